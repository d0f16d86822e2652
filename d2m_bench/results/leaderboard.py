"""Leaderboard: reported numbers from papers beside measured runs, ranked per comparable group.

Inputs: ``results/reported/*.csv`` (transcribed tables) and ``results/runs/*.json`` (anything
with a top-level ``leaderboard`` list of rows: `d2m-bench eval --system`, `mos aggregate`).
Output: one row per system x protocol hash x comparable key x metric. Rows are ranked only
against rows with the same protocol hash, metric and ``comparable_key``: the key names what
changes a number outside the protocol file (the embedder weights of genre metrics, the
listening test of MOS rows); "" when nothing does.

A reported row carries the protocol hash pinned when it was transcribed (``protocol_hash``
column), so editing a protocol file moves measured runs to a new hash while the paper's
numbers stay under the parameters they were produced with. Metrics with no released
procedure stay under a ``paper:`` pseudo-protocol and are ranked only among reported rows.
"""
from __future__ import annotations

import csv
import io
import json
import math
import warnings
from pathlib import Path

from ..errors import UserError
from ..protocol import available_protocols
from ..io.provenance import provenance_label
from ..io.atomic import write_text
from ..io.text import md_cell, plain_fields
from ..resources import shipped_dir

COLUMNS = ["protocol", "protocol_hash", "comparable_key", "metric", "rank", "system", "kind", "value", "unit",
           "higher_is_better", "n", "source", "provenance"]
LOWER_IS_BETTER_PREFIXES = ("fad",)
REQUIRED_REPORTED = ("source", "table", "system", "metric", "value", "protocol")


def _note(notes, message: str) -> None:
    if notes is None:
        warnings.warn(message, stacklevel=3)
    else:
        notes.append(message)


class _Skipper:
    """Malformed input is skipped with a warning naming the file (and row), or, with
    ``strict``, a UserError: never ranked, never a traceback."""

    def __init__(self, notes, strict: bool):
        self.notes, self.strict = notes, strict

    def __call__(self, path, problem: str) -> None:
        if self.strict:
            raise UserError(problem, path)
        _note(self.notes, f"{path}: skipped: {problem}")


def _finite(value):
    """``value`` as a finite float, or None: booleans, strings, NaN, infinities and numbers
    too large for a float are not leaderboard values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _text(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def reported_dirs(results_dir: Path, *, shipped: bool = True) -> list[Path]:
    """The paper numbers shipped with the package, then RESULTS/reported/ when it is another folder
    (a user's own transcriptions); the same row in both counts once."""
    package = shipped_dir("reported")
    own = Path(results_dir) / "reported"
    dirs = [package] if shipped else []
    if own.is_dir() and own.resolve() != package.resolve():
        dirs.append(own)
    return dirs


def _reported_rows(folder: Path, notes=None, strict: bool = False) -> list:
    protocols = available_protocols()
    skip = _Skipper(notes, strict)
    rows = []
    for path in sorted(folder.glob("*.csv")):
        stale, unpinned = {}, set()
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            skip(path, f"unreadable reported CSV ({exc.__class__.__name__})")
            continue
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""))
            lacking = [c for c in REQUIRED_REPORTED if c not in (reader.fieldnames or [])]
            if lacking:
                skip(path, f"reported CSV lacks the column(s) {', '.join(lacking)}")
                continue
            records = list(enumerate(reader, start=2))
        except csv.Error as exc:
            skip(path, f"malformed CSV ({exc})")
            continue
        for i, r in records:
            empty = [c for c in ("source", "table", "system", "metric", "protocol") if not _text(r.get(c))]
            if empty:
                skip(path, f"line {i}: empty {', '.join(empty)}")
                continue
            try:
                value = _finite(float(r["value"] or ""))
            except (TypeError, ValueError):
                value = None
            if value is None:
                skip(path, f"line {i}: value {r['value']!r} is not a finite number")
                continue
            proto = r["protocol"]
            pinned = (r.get("protocol_hash") or "").strip()
            current = protocols[proto].hash if proto in protocols else None
            if pinned:
                if current is not None and pinned != current:
                    stale[proto] = (pinned, current)
                proto_hash = pinned
            elif current is not None:
                unpinned.add(proto)
                proto_hash = current
            else:
                proto_hash = proto  # a paper: pseudo-protocol is its own group
            rows.append({"protocol": proto, "protocol_hash": proto_hash,
                         "comparable_key": (r.get("comparable_key") or "").strip(),
                         "metric": r["metric"], "system": r["system"], "kind": "reported",
                         "value": value, "unit": r.get("unit") or "",
                         "higher_is_better": not r["metric"].startswith(LOWER_IS_BETTER_PREFIXES),
                         "n": "", "source": f"{r['source']} table {r['table']}", "provenance": ""})
        for proto, (pinned, current) in sorted(stale.items()):
            _note(notes, f"{path}: protocol '{proto}' has changed since these numbers were transcribed "
                         f"(pinned {pinned[:12]}, file now {current[:12]}); its reported rows keep the pinned "
                         "hash and are not ranked with runs under the edited file")
        for proto in sorted(unpinned):
            _note(notes, f"{path}: no protocol_hash for '{proto}'; used the current file's hash "
                         "(add a protocol_hash column to pin it)")
    return rows


def _run_row(r, i: int, path: Path, skip) -> dict | None:
    """A validated leaderboard row of a run file, or None (skipped, with the reason)."""
    if not isinstance(r, dict):
        skip(path, f"leaderboard row {i} is a {type(r).__name__}, expected an object")
        return None
    where = f"leaderboard row {i} ({r.get('system')!s:.40} / {r.get('metric')!s:.40})"
    missing = [k for k in ("system", "metric", "protocol", "protocol_hash") if not _text(r.get(k))]
    if missing:
        skip(path, f"{where}: no {', '.join(missing)} (must be non-empty text)")
        return None
    key = r.get("comparable_key", "") or ""
    if not isinstance(key, str):
        skip(path, f"comparable_key of {r['system']} / {r['metric']} is not a string")
        return None
    unit = r.get("unit", "") or ""
    hib = r.get("higher_is_better", True)
    n = r.get("n", "")
    if not isinstance(unit, str) or not isinstance(hib, bool) or not (n in ("", None) or _finite(n) is not None):
        skip(path, f"{where}: unit must be text, higher_is_better true/false, n a number")
        return None
    value = _finite(r.get("value"))
    if value is not None and unit in ("fraction", "ratio"):  # papers print these as percentages (x100)
        value, unit = _finite(100.0 * value), "percent"
    if value is None:
        skip(path, f"{where}: value {r.get('value')!r:.40} is not a finite number")
        return None
    return {"protocol": r["protocol"], "protocol_hash": r["protocol_hash"], "comparable_key": key,
            "metric": r["metric"], "system": r["system"], "kind": "measured", "value": value,
            "unit": unit, "higher_is_better": hib, "n": "" if n is None else n}


def _measured_rows(folder: Path, notes=None, strict: bool = False) -> list:
    skip = _Skipper(notes, strict)
    rows, skipped = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            skip(path, f"unreadable run file ({exc.__class__.__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})")
            continue
        if not isinstance(doc, dict):
            skip(path, f"run file holds a JSON {type(doc).__name__}, expected an object")
            continue
        if doc.get("complete", False) is not True:
            skip(path, "run file is not a complete result")
            continue
        board = doc.get("leaderboard")
        if not board:
            skipped.append(path.name)
            continue
        if not isinstance(board, list):
            skip(path, f"'leaderboard' is a {type(board).__name__}, expected a list of rows")
            continue
        created = doc.get("created", "")
        inputs = doc.get("inputs") if isinstance(doc.get("inputs"), dict) else {}
        try:
            prov = provenance_label(inputs.get("pred_provenance")) if isinstance(inputs.get("pred_provenance"), dict) else ""
        except (AttributeError, TypeError, KeyError, ValueError):
            prov = ""
            _note(notes, f"{path}: malformed pred_provenance left out")
        for i, r in enumerate(board, start=1):
            row = _run_row(r, i, path, skip)
            if row is not None:
                rows.append(dict(row, source=path.name, provenance=prov,
                                 _created=created if isinstance(created, str) else ""))
    if skipped:
        _note(notes, f"{folder}: skipped {len(skipped)} run file(s) without leaderboard rows "
                     f"(evaluated without --system): {', '.join(skipped)}")
    return rows


def _group(r) -> tuple:
    """Rows are comparable only when all of these agree."""
    return (r["protocol_hash"], r["metric"], r["comparable_key"])


def build_leaderboard(results_dir="results", notes=None, *, shipped: bool = True, strict: bool = False) -> list:
    """Ranked rows. Warnings go to ``notes`` (a list) when given, else to ``warnings.warn``.

    ``shipped=False`` leaves out the paper numbers that come with the package. A malformed
    run file or row (not JSON, not an object, incomplete, a value that is not a finite
    number, a missing metric ...) is skipped with a warning naming it, or with ``strict`` is
    a UserError."""
    results_dir = Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise UserError("results path is not a directory", results_dir)
    # Later runs of the same system in the same group replace earlier ones.
    measured = sorted(_measured_rows(results_dir / "runs", notes, strict), key=lambda r: r.pop("_created"))
    reported = []
    for folder in reported_dirs(results_dir, shipped=shipped):
        reported += _reported_rows(folder, notes, strict)
    best: dict = {}
    for r in reported + measured:
        key = (r["system"], r["kind"]) + _group(r)
        if r["kind"] == "reported" and key in best:
            continue  # the same number printed in two tables
        best[key] = r
    groups: dict = {}
    for r in best.values():
        groups.setdefault(_group(r), []).append(r)

    def order(item):  # protocol name first, so a protocol's hashes and keys sit together
        (h, metric, ckey), rows = item
        return rows[0]["protocol"], h, ckey, metric

    out = []
    for _, rows in sorted(groups.items(), key=order):
        rows.sort(key=lambda r: -r["value"] if r["higher_is_better"] else r["value"])
        for rank, r in enumerate(rows, start=1):
            out.append(dict(r, rank=rank))
    return out


def to_csv(rows) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(dict(plain_fields(r), value=f"{r['value']:.4g}" if r["unit"] != "percent" else f"{r['value']:.2f}"))
    return buf.getvalue()


def to_markdown(rows) -> str:
    """One table per protocol hash and comparable key: systems as rows, metrics as columns."""
    by_proto: dict = {}
    for r in rows:
        by_proto.setdefault((r["protocol"], r["protocol_hash"], r.get("comparable_key", "")), []).append(r)
    parts = ["# Leaderboard", "",
             "Generated by `d2m-bench leaderboard`. Rows are comparable only within one table "
             "(one protocol hash and, where shown, one comparable key: embedder weights or listening "
             "test). *reported* = transcribed from the paper; *measured* = a run in results/runs/.", ""]
    for (name, h, ckey), rs in by_proto.items():
        metrics = list(dict.fromkeys(r["metric"] for r in rs))
        systems = list(dict.fromkeys((r["system"], r["kind"]) for r in rs))
        cell = {(r["system"], r["kind"], r["metric"]): r for r in rs}
        # a paper: pseudo-protocol is its own hash: print it once, in full
        heading = (f"## {md_cell(name)}" if h == name else f"## {md_cell(name)} (`{md_cell(h[:12])}`)") \
            + (f" · `{md_cell(ckey)}`" if ckey else "")
        parts += [heading, "",
                  "| system | kind | " + " | ".join(map(md_cell, metrics)) + " |",
                  "|---|---|" + "---:|" * len(metrics)]
        for sysname, kind in systems:
            vals = []
            for m in metrics:
                r = cell.get((sysname, kind, m))
                vals.append("" if r is None else f"{r['value']:.1f}" if r["unit"] == "percent" else f"{r['value']:.3g}")
            parts.append(f"| {md_cell(sysname)} | {md_cell(kind)} | " + " | ".join(vals) + " |")
        parts.append("")
    return "\n".join(parts)


def write_leaderboard(results_dir="results", csv_path=None, md_path=None, notes=None, *, shipped: bool = True,
                      strict: bool = False, extra_outputs: dict | None = None) -> list:
    """Build and write the leaderboard. The outputs (and ``extra_outputs``, option -> path, that
    the caller writes itself) are checked before anything is read: never a run or reported
    file, never each other, in a writable folder."""
    from ..io.outputs import check_outputs

    results_dir = Path(results_dir)
    csv_path, md_path = Path(csv_path or results_dir / "leaderboard.csv"), Path(md_path or results_dir / "leaderboard.md")
    check_outputs({"--csv": csv_path, "--md": md_path, **(extra_outputs or {})},
                  {"a run file": sorted((results_dir / "runs").glob("*.json")) if (results_dir / "runs").is_dir() else None,
                   "a reported CSV": [p for d in reported_dirs(results_dir, shipped=shipped) for p in d.glob("*.csv")]})
    rows = build_leaderboard(results_dir, notes, shipped=shipped, strict=strict)
    write_text(csv_path, to_csv(rows))
    write_text(md_path, to_markdown(rows))
    return rows
