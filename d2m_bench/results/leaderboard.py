"""Leaderboard: reported numbers from papers beside measured runs, ranked per comparable group.

Inputs: ``results/reported/*.csv`` (transcribed tables) and ``results/runs/*.json`` (anything
with a top-level ``leaderboard`` list of rows: `d2m-bench eval --system`, `mos aggregate`).
Output: one row per system x protocol hash x comparable key x gt set x metric. Rows are ranked
only against rows with the same protocol hash, metric, ``comparable_key`` and gt set: the key
names what changes a number outside the protocol file (the embedder weights of genre metrics,
the listening test of MOS rows; "" when nothing does), the gt set which clips were scored
(:mod:`d2m_bench.results.gtset`). A reported row names its set by the segment list's hash; a
measured run whose scored ids hash to it sits in that table, any other run in a table of its
own set. Reference systems (gt, shuffled gt, metronome, noise, silence) scored on the same set
sit beside the measured rows unranked (:mod:`d2m_bench.results.floors`); a measured value that
does not beat the best floor is marked, and so is Beats Coverage above 100 % (over-generation).
Each row carries its run's flags (:mod:`d2m_bench.results.flags`).

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
from . import directions, gtset
from .flags import run_flags
from .units import format_value

COLUMNS = ["protocol", "protocol_hash", "comparable_key", "metric", "rank", "system", "kind", "value", "unit",
           "higher_is_better", "n", "source", "provenance", "gt_set", "gt_set_key", "role", "direction", "flags",
           "marks"]
# Cell marks (leaderboard.md and the HTML page explain them under each table).
BELOW_FLOOR = "not above the best floor"
OVER_GENERATION = "above 100 %: more onset bins than the gt (over-generation)"
UNNAMED_SET = "gt set not named (a run made before gt sets were recorded, or a reported CSV without gt_set)"
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
            set_sha = (r.get("segment_list_sha256") or "").strip()
            set_title = (r.get("gt_set") or "").strip()
            rows.append({"protocol": proto, "protocol_hash": proto_hash,
                         "gt_set_key": f"list:{set_sha}" if set_sha else f"named:{set_title}" if set_title else "",
                         "gt_set": set_title, "role": "", "flags": "",
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
    direction = r.get("direction") or directions.default(hib)
    try:
        directions.parse(direction)
    except ValueError as exc:
        skip(path, f"{where}: direction {exc}")
        return None
    if unit == "percent" and r.get("unit") in ("fraction", "ratio"):
        direction = directions.scaled(direction, 100.0)
    return {"protocol": r["protocol"], "protocol_hash": r["protocol_hash"], "comparable_key": key,
            "metric": r["metric"], "system": r["system"], "kind": "measured", "value": value,
            "unit": unit, "higher_is_better": hib, "n": "" if n is None else n, "direction": direction}


def _reference(doc: dict) -> tuple[str, str] | None:
    """(name, role) of a reference system's result: a floor computed by the leaderboard, or a
    `d2m-bench baseline run` reference (provenance kind "reference"); None for a system."""
    from .floors import BASELINE_REFERENCES, role

    ref = doc.get("reference")
    if isinstance(ref, dict) and isinstance(ref.get("name"), str):
        return ref["name"], str(ref.get("role") or role(ref["name"]))
    prov = (doc.get("inputs") or {}).get("pred_provenance") if isinstance(doc.get("inputs"), dict) else None
    if isinstance(prov, dict) and prov.get("kind") == "reference" and isinstance(prov.get("baseline"), str):
        name = BASELINE_REFERENCES.get(prov["baseline"], prov["baseline"])
        return name, role(name)
    return None


def _is_eval_result(doc: dict) -> bool:
    """An eval result (which scored gt clips), as opposed to a MOS aggregate or a bare row list."""
    return isinstance(doc.get("per_clip"), list) and isinstance(doc.get("protocol"), dict) \
        and doc["protocol"].get("command", "eval") == "eval"


def _doc_rows(doc: dict, source: str, path, skip, notes) -> list:
    """The validated leaderboard rows of one result document, with its gt set, flags and role."""
    inputs = doc.get("inputs") if isinstance(doc.get("inputs"), dict) else {}
    try:
        prov = provenance_label(inputs.get("pred_provenance")) if isinstance(inputs.get("pred_provenance"), dict) else ""
    except (AttributeError, TypeError, KeyError, ValueError):
        prov = ""
        _note(notes, f"{path}: malformed pred_provenance left out")
    gt_set = inputs.get("gt_set")
    set_key = gtset.key(gt_set)
    flags = doc.get("flags") if isinstance(doc.get("flags"), list) else run_flags(doc)
    ref = _reference(doc)
    created = doc.get("created", "")
    extra = {"source": source, "provenance": prov, "_created": created if isinstance(created, str) else "",
             "gt_set_key": set_key, "gt_set": gtset.title(gt_set) if set_key else "",
             "_ids": gt_set.get("ids_sha256") if set_key else None, "_doc": doc,
             "flags": "; ".join(str(f) for f in flags), "role": ref[1] if ref else "", "_ref": ref[0] if ref else ""}
    if ref:
        extra["kind"] = "reference"
    rows = []
    for i, r in enumerate(doc.get("leaderboard") or [], start=1):
        row = _run_row(r, i, path, skip)
        if row is None:
            continue
        rows.append(dict(row, **extra))
        capped = ((doc.get("aggregate") or {}).get(row["metric"]) or {}).get("capped_mean") \
            if row["metric"] == "beats_coverage" and isinstance(doc.get("aggregate"), dict) else None
        if _finite(capped) is not None and row["unit"] == "percent":  # min(coverage, 1) per clip, beside it
            rows.append(dict(rows[-1], metric="beats_coverage_capped", value=100.0 * capped, direction="higher"))
    return rows


def _measured_rows(folder: Path, notes=None, strict: bool = False) -> list:
    skip = _Skipper(notes, strict)
    rows, skipped, unnamed = [], [], []
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
        got = _doc_rows(doc, path.name, path, skip, notes)
        if got and _is_eval_result(doc) and not got[0]["gt_set_key"]:
            unnamed.append(path.name)
        rows += got
    if skipped:
        _note(notes, f"{folder}: skipped {len(skipped)} run file(s) without leaderboard rows "
                     f"(evaluated without --system): {', '.join(skipped)}")
    if unnamed:
        _note(notes, f"{folder}: {len(unnamed)} run file(s) made before gt sets were recorded are shown apart, "
                     f"under '{UNNAMED_SET.split(' (')[0]}' (re-run eval to place them): {', '.join(unnamed)}")
    return rows


def _group(r) -> tuple:
    """Rows are comparable only when all of these agree."""
    return (r["protocol_hash"], r["metric"], r["comparable_key"], r.get("gt_set_key", ""))


def _place_in_reported_sets(measured, reported) -> None:
    """A measured row whose scored ids hash to a reported set's segment list, under the same
    protocol hash, joins that set's table (and takes its title)."""
    named = {(r["protocol_hash"], r["gt_set_key"]): r["gt_set"] for r in reported
             if r["gt_set_key"].startswith("list:")}
    for r in measured:
        key = (r["protocol_hash"], f"list:{r.get('_ids')}")
        if r.get("_ids") and key in named:
            r["gt_set_key"], r["gt_set"] = key[1], named[key]


def _add_floors(measured, notes, *, progress=False) -> list:
    """Floor rows for every (protocol hash, gt set) with measured systems but not all five floors:
    from the cache or computed from the gt files; one note per set that cannot get them."""
    from .floors import FLOORS, FloorsUnavailable, compute_floors

    have: dict = {}
    for r in measured:
        have.setdefault((r["protocol_hash"], r["gt_set_key"]), set())
        if r["kind"] == "reference":
            have[(r["protocol_hash"], r["gt_set_key"])].add(r["_ref"])
    added = []
    for (h, set_key), names in have.items():
        systems = [r for r in measured if (r["protocol_hash"], r["gt_set_key"]) == (h, set_key) and r["kind"] == "measured"]
        if not systems or not set_key or set(FLOORS) <= names:
            continue
        docs = [r["_doc"] for r in systems if _is_eval_result(r["_doc"])]
        if not docs:
            continue
        skip = _Skipper(notes, False)
        try:
            floor_docs = compute_floors(docs[0], progress=progress)
        except FloorsUnavailable as exc:
            _note(notes, f"gt set '{systems[0]['gt_set']}' under {systems[0]['protocol']}: no floors ({exc}); "
                         "run `d2m-bench leaderboard` where the gt files of a run in it are")
            continue
        for doc in floor_docs:
            name = doc["reference"]["name"]
            if name in names:
                continue
            rows = _doc_rows(doc, f"floors:{name}", "floors", skip, notes)
            for r in rows:
                r["gt_set_key"], r["gt_set"] = set_key, systems[0]["gt_set"]
            added += rows
    return added


def _floor_hint(measured, notes) -> None:
    """Without --floors: one line for the sets that lack floors, saying how to add them."""
    from .floors import FLOORS

    missing = []
    for (h, set_key) in {(r["protocol_hash"], r["gt_set_key"]) for r in measured if r["kind"] == "measured"}:
        names = {r["_ref"] for r in measured
                 if r["kind"] == "reference" and (r["protocol_hash"], r["gt_set_key"]) == (h, set_key)}
        if set_key and not set(FLOORS) <= names:
            missing.append(next(r["gt_set"] for r in measured if r["gt_set_key"] == set_key))
    if missing:
        _note(notes, f"{len(missing)} gt set(s) without floors ({'; '.join(sorted(set(missing))[:3])}): "
                     "run `d2m-bench leaderboard --floors` where their gt files are, to score the gt, shuffled gt, "
                     "metronome, white noise and silence on them")


def _mark(rows) -> None:
    """Marks of one group: measured values not above the best floor, coverage over 100 %."""
    floors = [r for r in rows if r.get("role") == "floor"]
    best = None
    for r in floors:
        if best is None or directions.better(r["value"], best["value"], r["direction"]):
            best = r
    for r in rows:
        marks = []
        if best is not None and r["kind"] == "measured" and not directions.better(r["value"], best["value"], r["direction"]):
            marks.append(f"{BELOW_FLOOR} ({best['system'].removeprefix('floor: ')} {best['value']:.4g})")
        if r["metric"] == "beats_coverage" and r.get("unit") == "percent" and r["value"] > 100.0:
            marks.append(OVER_GENERATION)
        r["marks"] = "; ".join(marks)


def build_leaderboard(results_dir="results", notes=None, *, shipped: bool = True, strict: bool = False,
                      floors: bool = False, progress: bool = False) -> list:
    """Ranked rows. Warnings go to ``notes`` (a list) when given, else to ``warnings.warn``.

    ``shipped=False`` leaves out the paper numbers that come with the package. A malformed
    run file or row (not JSON, not an object, incomplete, a value that is not a finite
    number, a missing metric ...) is skipped with a warning naming it, or with ``strict`` is
    a UserError. ``floors`` scores the missing reference systems of every gt set with measured
    runs (cached; needs the gt files); otherwise a note says which sets lack them."""
    results_dir = Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise UserError("results path is not a directory", results_dir)
    # Later runs of the same system in the same group replace earlier ones.
    measured = sorted(_measured_rows(results_dir / "runs", notes, strict), key=lambda r: r.pop("_created"))
    reported = []
    for folder in reported_dirs(results_dir, shipped=shipped):
        reported += _reported_rows(folder, notes, strict)
    for r in reported:
        r["direction"] = directions.default(r["higher_is_better"])
    if floors:
        extra = _add_floors(measured, notes, progress=progress)
        for r in extra:
            r.pop("_created", None)
        measured += extra
    else:
        _floor_hint(measured, notes)
    _place_in_reported_sets(measured, reported)
    best: dict = {}
    for r in reported + measured:
        key = (r["system"], r["kind"]) + _group(r)
        if r["kind"] == "reported" and key in best:
            continue  # the same number printed in two tables
        best[key] = r
    groups: dict = {}
    for r in best.values():
        groups.setdefault(_group(r), []).append(r)

    def order(item):  # protocol name first, so a protocol's hashes, keys and sets sit together
        (h, metric, ckey, set_key), rows = item
        return rows[0]["protocol"], h, ckey, set_key, metric

    out = []
    for _, rows in sorted(groups.items(), key=order):
        ranked = sorted((r for r in rows if r["kind"] != "reference"),
                        key=lambda r: directions.sort_key(r["value"], r["direction"]))
        refs = sorted((r for r in rows if r["kind"] == "reference"),
                      key=lambda r: directions.sort_key(r["value"], r["direction"]))
        _mark(rows)
        for rank, r in enumerate(ranked, start=1):
            out.append(dict(r, rank=rank))
        out += [dict(r, rank="") for r in refs]
    for r in out:
        for k in ("_doc", "_ids", "_ref"):
            r.pop(k, None)
    return out


def to_csv(rows) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(dict(plain_fields(r), value=f"{r['value']:.4g}" if r["unit"] != "percent" else f"{r['value']:.2f}"))
    return buf.getvalue()


def _cell(r) -> str:
    return format_value(r["value"], r["unit"] or "score")  # the one unit rule (results/units.py)


def tables(rows) -> dict:
    """(protocol, protocol hash, comparable key, gt-set key) -> rows, in leaderboard order."""
    out: dict = {}
    for r in rows:
        out.setdefault((r["protocol"], r["protocol_hash"], r.get("comparable_key", "") or "",
                        r.get("gt_set_key", "") or ""), []).append(r)
    return out


def heading(name, h, ckey, set_title) -> str:
    """A table's title: protocol (hash), comparable key, gt set."""
    head = (name if h == name else f"{name} (`{h[:12]}`)") + (f" · `{ckey}`" if ckey else "")
    return head + (f" · {set_title}" if set_title else "")


def to_markdown(rows) -> str:
    """One table per protocol hash, comparable key and gt set: systems as rows, metrics as columns,
    references (floors) below the ranked rows, the run's flags in the last column."""
    parts = ["# Leaderboard", "",
             "Generated by `d2m-bench leaderboard`. Rows are comparable only within one table "
             "(one protocol hash, one gt set and, where shown, one comparable key: embedder weights or listening "
             "test). *reported* = transcribed from the paper; *measured* = a run in results/runs/; *reference* = "
             "a trivial system scored on the same gt set (ceiling: the gt itself; floors: shuffled gt, metronome, "
             f"white noise, silence), never ranked. † = {BELOW_FLOOR} of the table; ‡ = {OVER_GENERATION}.", ""]
    for (name, h, ckey, set_key), rs in tables(rows).items():
        metrics = list(dict.fromkeys(r["metric"] for r in rs))
        systems = list(dict.fromkeys((r["system"], r["kind"]) for r in rs))
        cell = {(r["system"], r["kind"], r["metric"]): r for r in rs}
        title = rs[0].get("gt_set") or ("" if not set_key else set_key)
        # names come from run files: escaped for Markdown (a pipe or a line break would add a row)
        parts += [f"## {heading(md_cell(name), md_cell(h), md_cell(ckey), md_cell(title))}", ""]
        if not set_key:
            parts += [f"gt set: {UNNAMED_SET}", ""]
        flagged = any(r.get("flags") for r in rs)
        parts += ["| system | kind | " + " | ".join(map(md_cell, metrics)) + (" | flags |" if flagged else " |"),
                  "|---|---|" + "---:|" * len(metrics) + ("---|" if flagged else "")]
        for sysname, kind in systems:
            vals, flags = [], ""
            for m in metrics:
                r = cell.get((sysname, kind, m))
                if r is None:
                    vals.append("")
                    continue
                marks = r.get("marks") or ""
                vals.append(_cell(r) + (" †" if BELOW_FLOOR in marks else "") + (" ‡" if OVER_GENERATION in marks else ""))
                flags = flags or r.get("flags") or ""
            label = kind if kind != "reference" else f"reference ({next(r['role'] for r in rs if r['system'] == sysname)})"
            parts.append(f"| {md_cell(sysname)} | {md_cell(label)} | " + " | ".join(vals)
                         + (f" | {md_cell(flags)} |" if flagged else " |"))
        parts.append("")
    return "\n".join(parts)


def write_leaderboard(results_dir="results", csv_path=None, md_path=None, notes=None, *, shipped: bool = True,
                      strict: bool = False, extra_outputs: dict | None = None, floors: bool = False,
                      progress: bool = False) -> list:
    """Build and write the leaderboard. The outputs (and ``extra_outputs``, option -> path, that
    the caller writes itself) are checked before anything is read: never a run or reported
    file, never each other, in a writable folder."""
    from ..io.outputs import check_outputs

    results_dir = Path(results_dir)
    csv_path, md_path = Path(csv_path or results_dir / "leaderboard.csv"), Path(md_path or results_dir / "leaderboard.md")
    check_outputs({"--csv": csv_path, "--md": md_path, **(extra_outputs or {})},
                  {"a run file": sorted((results_dir / "runs").glob("*.json")) if (results_dir / "runs").is_dir() else None,
                   "a reported CSV": [p for d in reported_dirs(results_dir, shipped=shipped) for p in d.glob("*.csv")]})
    rows = build_leaderboard(results_dir, notes, shipped=shipped, strict=strict, floors=floors, progress=progress)
    write_text(csv_path, to_csv(rows))
    write_text(md_path, to_markdown(rows))
    return rows
