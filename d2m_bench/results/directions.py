"""How a metric is ranked: ``higher``, ``lower`` or ``closer_to:X``.

The default is the paper's: every beat metric higher-is-better, FAD lower. A protocol may
declare another direction per metric in an optional ``[ranking]`` table (absent by default, so
the shipped protocols keep their hashes), e.g. ``beats_coverage = "closer_to:1"``: Beats
Coverage is B_g / B_t, and a prediction with more onset bins than its gt (over-generation)
scores above 1, which ``higher`` ranks as better. X is in the metric's own unit (a ratio of 1,
shown as 100 on the leaderboard).
"""
from __future__ import annotations

import math

DIRECTIONS = ("higher", "lower")


def parse(direction) -> tuple[str, float | None]:
    """("higher" | "lower" | "closer_to", target or None); ValueError for anything else."""
    if direction in DIRECTIONS:
        return direction, None
    if isinstance(direction, str) and direction.startswith("closer_to:"):
        try:
            target = float(direction.split(":", 1)[1])
        except ValueError:
            target = math.nan
        if math.isfinite(target):
            return "closer_to", target
    raise ValueError(f"{direction!r} is not higher, lower or closer_to:<number>")


def default(higher_is_better) -> str:
    return "lower" if higher_is_better is False else "higher"


def scaled(direction: str, factor: float) -> str:
    """The direction of a value multiplied by ``factor`` (a ratio shown as a percentage)."""
    kind, target = parse(direction)
    return direction if target is None else f"closer_to:{target * factor:g}"


def sort_key(value: float, direction: str) -> float:
    """Smaller is better: the rank order of ``value`` under ``direction``."""
    kind, target = parse(direction)
    if kind == "higher":
        return -value
    if kind == "lower":
        return value
    return abs(value - target)


def better(a: float, b: float, direction: str) -> bool:
    """Whether ``a`` ranks strictly above ``b``."""
    return sort_key(a, direction) < sort_key(b, direction)


def arrow(direction: str) -> str:
    kind, target = parse(direction)
    return "↑" if kind == "higher" else "↓" if kind == "lower" else f"→{target:g}"
