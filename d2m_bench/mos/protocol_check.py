"""Validation of MOS protocols (``command = "mos"``), run before any rating is read.

Every key `mos aggregate` reads is checked for type, finiteness and range, and every key it
does not read is refused: a typo would otherwise silently keep a default, and a NaN threshold
silently turns a screening rule off (``|z| >= nan`` is never true).
"""
from __future__ import annotations

import math

from ..errors import UserError

TABLES = ("scale", "screening", "stats")
LEVELS = ("nominal", "ordinal", "interval", "ratio")
PAIRWISE_TESTS = ("wilcoxon_item_means",)
CORRECTIONS = ("holm",)
MAX_BOOTSTRAP = 1_000_000

# key -> (kind, low, high, low is open, high is open); kind: "num", "int" or "bool".
SCALE = {"min": ("num", None, None, False, False), "max": ("num", None, None, False, False),
         "integer": ("bool",)}
SCREENING = {
    "trap_tolerance": ("num", 0, None, False, False),
    "max_trap_failures": ("int", 0, None, False, False),
    "gold_tolerance": ("num", 0, None, False, False),
    "max_gold_failures": ("int", 0, None, False, False),
    "reference_min_score": ("num", None, None, False, False),
    "reference_max_fail_fraction": ("num", 0, 1, False, False),
    "flat_max_variance": ("num", 0, None, False, False),
    "flat_min_ratings": ("int", 1, None, False, False),
    "require_playback_complete": ("bool",),
    "max_incomplete_fraction": ("num", 0, 1, False, False),
    "z_threshold": ("num", 0, None, True, False),
    "max_outlier_fraction": ("num", 0, 1, False, False),
}
STATS = {
    "ci_level": ("num", 0, 1, True, True),
    "bootstrap": ("int", 1, MAX_BOOTSTRAP, False, False),
    "seed": ("int", 0, 2 ** 63 - 1, False, False),
    "alpha": ("num", 0, 1, True, True),
}
STATS_CHOICES = {"pairwise_test": PAIRWISE_TESTS, "correction": CORRECTIONS, "krippendorff_level": LEVELS}


def validate_mos(proto) -> None:
    """Raise UserError naming the protocol file and the first bad key of a MOS protocol."""
    where = proto.source or None

    def fail(message):
        raise UserError(f"protocol '{proto.name}': {message}", where)

    if proto.command != "mos":
        raise UserError(f"protocol '{proto.name}' is a {proto.command} protocol (for `d2m-bench {proto.command}`), "
                        "not one `d2m-bench mos aggregate` can use", where)
    unknown = sorted(set(proto.params) - set(TABLES))
    if unknown:
        fail(f"unknown table(s) or key(s) {', '.join(map(_short, unknown))} for a mos protocol "
             f"(allowed: {', '.join(TABLES)})")
    tables = {}
    for name, spec in (("scale", SCALE), ("screening", SCREENING), ("stats", {**STATS, **STATS_CHOICES})):
        table = proto.params.get(name, {})
        if not isinstance(table, dict):
            fail(f"'{name}' must be a table")
        bad = sorted(set(table) - set(spec))
        if bad:
            fail(f"unknown key(s) in [{name}]: {', '.join(map(_short, bad))} (allowed: {', '.join(spec)})")
        tables[name] = table
    for name, spec in (("scale", SCALE), ("screening", SCREENING), ("stats", STATS)):
        for key, value in tables[name].items():
            if key in spec:  # the choice keys of [stats] are checked below
                _check(fail, f"{name}.{key}", value, spec[key])
    for key, options in STATS_CHOICES.items():
        if key in tables["stats"] and tables["stats"][key] not in options:
            fail(f"stats.{key} = {_short(tables['stats'][key])} is not one of {', '.join(options)}")
    scale = tables["scale"]
    lo, hi = scale.get("min", 1), scale.get("max", 5)
    if not lo < hi:
        fail(f"scale.min = {_short(lo)} must be below scale.max = {_short(hi)}")
    if scale.get("integer", True) and not (float(lo).is_integer() and float(hi).is_integer()):
        fail(f"an integer scale needs whole-number ends (scale.min = {_short(lo)}, scale.max = {_short(hi)})")


def _check(fail, dotted, value, spec) -> None:
    kind = spec[0]
    if kind == "bool":
        if not isinstance(value, bool):
            fail(f"{dotted} = {_short(value)} must be true or false")
        return
    _, low, high, low_open, high_open = spec
    shown = _short(value)
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ok = is_int if kind == "int" else (is_int or isinstance(value, float))
    what = "an integer" if kind == "int" else "a finite number"
    try:
        finite = ok and math.isfinite(float(value))
    except OverflowError:  # an integer beyond any float
        finite = False
    if not finite:
        fail(f"{dotted} = {shown} must be {what}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        if low is not None and high is None:
            bound = f"{'>' if low_open else '>='} {low}"
        elif low is None:
            bound = f"{'<' if high_open else '<='} {high}"
        else:
            bound = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        fail(f"{dotted} = {shown} must be {what} {bound}")


def _short(value) -> str:
    """``repr`` for a message: one line (repr escapes line breaks), at most about 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
