"""The long-format ratings CSV: one row per (rater, item, system, aspect) rating.

Required columns: rater, item, system, aspect, score. Optional check columns (empty = unknown):
is_trap, expected_score, is_reference, playback_complete, played_fraction, listen_seconds,
response_seconds, stimulus, submitted_at. ``item`` is the content unit (segment id) shared by
the systems, so per-item comparisons between systems are paired.
Every problem is reported as one UserError naming the file and line.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd

from ..errors import UserError

REQUIRED = ("rater", "item", "system", "aspect", "score")
BOOLEAN = ("is_trap", "is_reference", "playback_complete")
NUMBER = ("expected_score", "played_fraction", "listen_seconds", "response_seconds")
TEXT = ("stimulus", "submitted_at")
COLUMNS = REQUIRED + ("stimulus", "is_trap", "expected_score", "is_reference", "playback_complete",
                      "played_fraction", "listen_seconds", "response_seconds", "submitted_at")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def _show(text: str) -> str:
    """A cell quoted for an error message: escaped (a quoted CSV cell may hold a line break, and
    the message must stay one line) and shortened."""
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


def _bool(text, col, line, path):
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    if t == "":
        return None
    raise UserError(f"line {line}: {col} must be 0/1 or true/false, got {_show(text)}", path)


def _number(text, col, line, path):
    t = text.strip()
    if t == "":
        return math.nan
    try:
        v = float(t)
    except ValueError:
        raise UserError(f"line {line}: {col} is not a number: {_show(text)}", path) from None
    if not math.isfinite(v):
        raise UserError(f"line {line}: {col} is not finite: {_show(text)}", path)
    return v


def _check_score(v, col, line, path, scale_min, scale_max, integer):
    if not (scale_min <= v <= scale_max):
        raise UserError(f"line {line}: {col} {v:g} outside the {scale_min:g}..{scale_max:g} scale", path)
    if integer and v != int(v):
        raise UserError(f"line {line}: {col} {v:g} is not a whole scale category", path)


def read_ratings(path, *, scale_min: float = 1, scale_max: float = 5, integer: bool = True) -> pd.DataFrame:
    """Validate and load a ratings CSV into a DataFrame (one row per rating, plus ``line``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError("no such ratings file", path)
    try:
        fh = open(path, newline="", encoding="utf-8-sig")  # -sig: spreadsheet exports start with a BOM
    except OSError as exc:
        raise UserError(f"unreadable ratings file ({exc.strerror})", path) from None
    with fh:
        try:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise UserError(f"line 1: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED)})", path)
            reader.fieldnames = header
            # Column lists, not a dict per row, and each distinct text stored once: a million
            # ratings then take tens of MB instead of gigabytes (issue 13).
            cols = {c: [] for c in ("line", "rater", "item", "system", "aspect", "score", *BOOLEAN, *NUMBER, *TEXT)}
            texts: dict = {}
            for line, raw in enumerate(reader, start=2):
                if None in raw:
                    raise UserError(f"line {line}: more fields than the header has", path)
                if any(raw.get(c) is None for c in REQUIRED):
                    raise UserError(f"line {line}: fewer fields than the header has", path)
                if all(not (v or "").strip() for v in raw.values()):
                    continue
                values = {}
                for c in ("rater", "item", "system", "aspect"):
                    v = raw[c].strip()
                    if not v:
                        raise UserError(f"line {line}: empty {c}", path)
                    values[c] = texts.setdefault(v, v)
                score = _number(raw["score"], "score", line, path)
                if math.isnan(score):
                    raise UserError(f"line {line}: empty score", path)
                _check_score(score, "score", line, path, scale_min, scale_max, integer)
                values["score"] = score
                for c in BOOLEAN:
                    values[c] = _bool(raw.get(c) or "", c, line, path)
                for c in NUMBER:
                    values[c] = _number(raw.get(c) or "", c, line, path)
                if not math.isnan(values["expected_score"]):
                    _check_score(values["expected_score"], "expected_score", line, path, scale_min, scale_max, integer)
                if values["is_trap"] and math.isnan(values["expected_score"]):
                    raise UserError(f"line {line}: trap item without expected_score", path)
                for c in TEXT:
                    v = (raw.get(c) or "").strip()
                    values[c] = texts.setdefault(v, v)
                values["line"] = line
                for c, v in values.items():
                    cols[c].append(v)
        except UnicodeDecodeError:
            raise UserError("not UTF-8 text", path) from None
        except csv.Error as exc:
            raise UserError(f"line {reader.line_num}: malformed CSV ({exc})", path) from None
    if not cols["line"]:
        raise UserError("no ratings in file", path)
    df = pd.DataFrame(cols)
    del cols, texts
    key = ["rater", "item", "system", "aspect"]
    dup = df.duplicated(key, keep="first")
    if dup.any():
        row = df.loc[dup.idxmax()]
        first = df.loc[(df[key] == row[key]).all(axis=1), "line"].min()
        name = {c: row[c] if row[c].isprintable() and len(row[c]) <= 60 else _show(row[c]) for c in key}
        raise UserError(f"line {row['line']}: duplicate rating of rater {name['rater']}, item {name['item']}, "
                        f"system {name['system']}, aspect {name['aspect']} (first on line {first})", path)
    df["is_trap"] = df["is_trap"].fillna(False).astype(bool)
    df["is_reference"] = df["is_reference"].fillna(False).astype(bool)
    return df
