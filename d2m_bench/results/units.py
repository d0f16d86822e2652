"""The one display rule for every number d2m-bench prints, draws or exports.

A result keeps raw values and names their unit (``aggregate[metric]["unit"]``): ``fraction``
(in [0, 1]) and ``ratio`` (a quotient that may exceed 1, Beats Coverage B_g/B_t) are shown in
percent, as the papers print them, with one decimal; a difference of two percentages is in
percentage points ("pp"); ``score`` (FD, KL, IS, CLAP score, MOS on its rating scale) is
unitless with four significant digits. ``percent`` is a value already multiplied by 100 (the
leaderboard's rows). Every table, figure, page and export goes through these functions, so the
same number reads the same everywhere.
"""
from __future__ import annotations

import math

#: raw unit -> (factor to the displayed unit, displayed unit, decimals or None for 4 significant digits)
DISPLAY = {
    "fraction": (100.0, "%", 1),
    "ratio": (100.0, "%", 1),
    "percent": (1.0, "%", 1),
    "score": (1.0, "", None),
}
#: a difference of two values in this displayed unit is written in
DIFFERENCE_UNIT = {"%": "pp"}


def _rule(unit) -> tuple:
    # no unit at all: metric_summary's default; an unknown unit: shown as it is stored
    return DISPLAY["fraction"] if unit is None else DISPLAY.get(unit, (1.0, "", None))


def is_percent(unit) -> bool:
    return _rule(unit)[1] == "%"


def display_unit(unit) -> str:
    """'%' for fractions, ratios and percentages, '' for unitless scores."""
    return _rule(unit)[1]


def scale(value, unit):
    """A raw value in its displayed unit (x100 for fractions and ratios); None stays None."""
    if not _finite(value):
        return None
    return float(value) * _rule(unit)[0]


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _number(v: float, decimals, sign: bool) -> str:
    if decimals is None:
        return f"{v:+.4g}" if sign else f"{v:.4g}"
    return f"{v:+.{decimals}f}" if sign else f"{v:.{decimals}f}"


def format_value(value, unit, *, suffix: bool = True) -> str:
    """A raw value as displayed: ``0.958`` (fraction) -> ``95.8%``; ``3.25`` (score) -> ``3.25``;
    anything not a finite number -> ``-``. ``suffix=False`` leaves off the '%' (table cells
    whose header names the unit)."""
    if not _finite(value):
        return "-"
    factor, shown, decimals = _rule(unit)
    return _number(factor * float(value), decimals, False) + (shown if suffix else "")


def format_difference(value, unit, *, suffix: bool = True) -> str:
    """A raw difference B - A as displayed, signed: fractions in percentage points
    (``0.125`` -> ``+12.5 pp``), scores unitless (``-0.5`` -> ``-0.5``)."""
    if not _finite(value):
        return "-"
    factor, shown, decimals = _rule(unit)
    text = _number(factor * float(value), decimals, True)
    diff = DIFFERENCE_UNIT.get(shown, shown)
    return text + (f" {diff}" if suffix and diff else "")


def format_interval(low, high, unit, *, difference: bool = False) -> str:
    """``[lo, hi]``, each bound as :func:`format_value` (or :func:`format_difference`) writes it."""
    if not (_finite(low) and _finite(high)):
        return "-"
    f = format_difference if difference else format_value
    return f"[{f(low, unit)}, {f(high, unit)}]"


def axis_label(name: str, unit) -> str:
    """An axis or column title: ``beats_hit (%)``; a unitless score keeps its bare name."""
    shown = display_unit(unit)
    return f"{name} ({shown})" if shown else name


def unit_of(aggregate_entry) -> str:
    """The raw unit an aggregate entry declares (``fraction`` when it declares none, as
    :func:`d2m_bench.results.result.metric_summary` defaults)."""
    if isinstance(aggregate_entry, dict) and isinstance(aggregate_entry.get("unit"), str):
        return aggregate_entry["unit"]
    return "fraction"
