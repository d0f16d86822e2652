"""The protocol reference page of the documentation, generated from the protocol files.

Written at documentation build time (docs/hooks/protocol_reference.py) so the page can never
disagree with the files that are shipped: every protocol's description, citation, command,
hash and every parameter, with the comment the file gives it.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Iterable

from . import protocol as _protocol
from .protocol import load_protocol

# The page's path in the site (docs/hooks/protocol_reference.py adds it; never a file in docs/).
REFERENCE_PAGE = "protocol-reference.md"

_HEADER = re.compile(r"^\s*\[([A-Za-z0-9_.\-]+)\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _trailing_comment(line: str) -> str:
    """The text after the first ``#`` that is outside a quoted string, or ''."""
    quote, escaped = None, False
    for i, ch in enumerate(line):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[i + 1:].strip()
    return ""


def file_comments(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """Comments of a protocol file: ``({dotted key: comment}, {table: note})``.

    A key's comment is the comment on its own line, after any comment lines just above it;
    comment lines right under a table header, before its first key, are the table's note.
    Multi-line values are not used by the protocol files and are not followed.
    """
    keys: dict[str, str] = {}
    tables: dict[str, str] = {}
    table, pending, seen_key = "", [], False
    for line in text.splitlines():
        stripped = line.strip()
        header = _HEADER.match(line)
        if header:
            table, pending, seen_key = header.group(1), [], False
            trailing = _trailing_comment(line[header.end():])
            if trailing:
                tables[table] = trailing
            continue
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        key = _KEY.match(line)
        if key:
            if pending and not seen_key and table:
                tables[table] = " ".join(filter(None, [tables.get(table, "")] + pending))
                pending = []
            dotted = f"{table}.{key.group(1)}" if table else key.group(1)
            parts = [" ".join(pending), _trailing_comment(line[key.end():])]
            keys[dotted] = " — ".join(p for p in parts if p)
            pending, seen_key = [], True
        elif not stripped:
            pending = []
    return keys, tables


def _flatten(params: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in params.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, dotted + ".")
        else:
            rows.append((dotted, value))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value) -> str:
    text = json.dumps(value)
    if "|" in text or "`" in text:
        # A table cell cannot hold a bare pipe, and an escaped one shows its backslash in code.
        return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"
    return f"`{text}`"


def _usage(name: str, command: str) -> str:
    if command == "mos":
        return f"d2m-bench mos aggregate RATINGS.csv --protocol {name}"
    return f"d2m-bench eval --pred PRED --gt GT --protocol {name}"


def protocol_section(path: Path) -> str:
    """Markdown for one protocol file: heading, facts, and one row per parameter."""
    path = Path(path)
    proto = load_protocol(path)
    keys, tables = file_comments(path.read_text())
    lines = [
        f"## `{proto.name}`",
        "",
        proto.description or "(no description)",
        "",
        f"- **file**: `protocols/{path.name}`",
        f"- **read by**: `d2m-bench {proto.command}`; e.g. `{_usage(proto.name, proto.command)}`",
        f"- **hash**: `{proto.hash}` (results and leaderboard rows show the first 12 digits, "
        f"`{proto.short_hash}`)",
        f"- **citation**: {proto.citation or '(none)'}",
        "",
    ]
    notes = [(t, n) for t, n in tables.items() if n]
    for table, note in notes:
        lines.append(f"- `[{table}]`: {note}")
    if notes:
        lines.append("")
    lines += ["| parameter | value | note |", "|---|---|---|"]
    unhashed = getattr(_protocol, "UNHASHED_TABLES", ())
    long_notes = []  # a note too long for a cell goes under the table (CELL_LIMIT)
    for dotted, value in _flatten(proto.params):
        note = keys.get(dotted, "")
        if dotted.split(".")[0] in unhashed:
            note = " \u2014 ".join(filter(None, ["not in the hash (changes no point value)", note]))
        if len(note) > CELL_LIMIT:
            long_notes.append(f"- `{dotted}`: {note}")
            note = "(below the table)"
        lines.append(f"| `{dotted}` | {_value(value)} | {_cell(note)} |")
    lines.append("")
    if long_notes:
        lines += long_notes + [""]
    return "\n".join(lines)


def protocol_reference(paths: Iterable[Path]) -> str:
    """The whole reference page for the given protocol files (sorted by file name)."""
    paths = sorted((Path(p) for p in paths), key=lambda p: p.name)
    protos = [(p, load_protocol(p)) for p in paths]
    lines = [
        "# Protocol reference",
        "",
        "Generated from the shipped `protocols/*.toml` when this site was built, so it always",
        "matches them. A protocol holds every parameter that changes a number; its hash is a",
        "SHA-256 over those parameters (`name`, `description`, `citation` and `command` are not",
        "parameters and do not enter it; nor do tables marked \"not in the hash\", which change",
        "no point value). How protocols are chosen, overridden and checked:",
        "[Scoring and protocols](eval.md).",
        "",
        "| protocol | read by | hash | description |",
        "|---|---|---|---|",
    ]
    for _, p in protos:
        lines.append(f"| [`{p.name}`](#{_anchor(p.name)}) | `{p.command}` | `{p.short_hash}` "
                     f"| {_cell(summary(p.description))} |")
    lines.append("")
    for path, _ in protos:
        lines.append(protocol_section(path))
    return "\n".join(lines)


def _anchor(name: str) -> str:
    """The id MkDocs' toc extension gives the heading ``## `name` ``."""
    slug = re.sub(r"[^\w\- ]", "", name).strip().lower()
    return re.sub(r"[\s]+", "-", slug)


CELL_LIMIT = 200  # characters of prose a table cell may hold in the docs (test_docs checks every page)


def summary(description: str, limit: int = CELL_LIMIT) -> str:
    """A description short enough for a table cell: whole when it fits, else up to its first
    colon (the rest is in the protocol's own section), else cut at a word."""
    if len(description) <= limit:
        return description
    head = description.split(": ", 1)[0]
    if len(head) <= limit - 2:
        return head + " (...)"
    return description[:limit - 6].rsplit(" ", 1)[0] + " (...)"


EVAL_TABLE_START = "<!-- protocol table: generated from protocols/*.toml by protocol_table(); test_docs checks it -->"
EVAL_TABLE_END = "<!-- end of the generated protocol table -->"


def protocol_table(paths: Iterable[Path]) -> str:
    """The table of every protocol for docs/eval.md: name (linked to its reference section),
    the command that reads it, and its description."""
    protos = sorted((load_protocol(Path(p)) for p in paths), key=lambda p: p.name)
    lines = [EVAL_TABLE_START, "", "| protocol | read by | what it computes |", "|---|---|---|"]
    for p in protos:
        lines.append(f"| [`{p.name}`](protocol-reference.md#{_anchor(p.name)}) | `d2m-bench {p.command}` "
                     f"| {_cell(summary(p.description))} |")
    return "\n".join(lines + ["", EVAL_TABLE_END])


def update_eval_page(page: Path, paths: Iterable[Path]) -> str:
    """``page``'s text with the generated protocol table between its markers."""
    text = Path(page).read_text(encoding="utf-8")
    start, end = text.index(EVAL_TABLE_START), text.index(EVAL_TABLE_END) + len(EVAL_TABLE_END)
    return text[:start] + protocol_table(paths) + text[end:]


if __name__ == "__main__":  # python -m d2m_bench.protocol_reference: rewrite docs/eval.md's table
    _root = Path(__file__).resolve().parents[1]
    _page = _root / "docs" / "eval.md"
    _page.write_text(update_eval_page(_page, sorted((_root / "protocols").glob("*.toml"))), encoding="utf-8")
