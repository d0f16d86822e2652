"""Balanced, seeded assignment of stimuli to raters.

Per aspect, rater r's K slots cycle through the systems starting at an offset that moves on
by K with every rater, so each rater meets every system floor(K/S) or ceil(K/S) times and
the systems' totals differ by at most one. Within a system, each slot takes the segment
that has been rated least so far (then one this rater has not seen yet, then a seeded
random choice), which keeps the number of ratings per stimulus within one of each other.
"""
from __future__ import annotations

from collections import Counter

import numpy as np


def balanced_assignment(systems: list, items: list, *, n_raters: int, per_rater: int, rng) -> list:
    """For each rater, an ordered list of ``(system, item)`` pairs (no pair twice per rater)."""
    S, M = len(systems), len(items)
    if per_rater > S * M:
        raise ValueError(f"{per_rater} items per rater, but only {S * M} system x segment stimuli exist")
    counts: Counter = Counter()
    out = []
    for r in range(n_raters):
        mine: set = set()
        seen_items: Counter = Counter()
        for j in range(per_rater):
            s = systems[(r * per_rater + j) % S]
            tiebreak = rng.random(M)
            best = min((i for i in range(M) if (s, items[i]) not in mine),
                       key=lambda i: (counts[(s, items[i])], seen_items[items[i]], tiebreak[i]))
            pair = (s, items[best])
            mine.add(pair)
            seen_items[items[best]] += 1
            counts[pair] += 1
        order = list(mine)
        order.sort()
        rng.shuffle(order)
        out.append(order)
    return out


def insert_checks(sequence: list, checks: list, rng) -> list:
    """Insert check stimuli at random positions, never first (a rater warms up on a real item)."""
    seq = list(sequence)
    for c in checks:
        pos = int(rng.integers(1, len(seq) + 1)) if seq else 0
        seq.insert(pos, c)
    return seq


def balance_report(assignments: list, systems: list, items: list) -> dict:
    """Spread of ratings per stimulus (over all system x segment pairs) and of system exposures
    per rater (max - min)."""
    per_pair = Counter(p for a in assignments for p in a)
    per_pair.update({(s, i): 0 for s in systems for i in items})
    per_rater_sys = [Counter(s for s, _ in a) for a in assignments]
    spread_rater = max((max(c[s] for s in systems) - min(c[s] for s in systems)) for c in per_rater_sys) if assignments else 0
    return {"ratings_per_stimulus_min": min(per_pair.values(), default=0),
            "ratings_per_stimulus_max": max(per_pair.values(), default=0),
            "system_exposure_spread_per_rater": int(spread_rater),
            "stimuli_used": sum(v > 0 for v in per_pair.values()), "stimuli_possible": len(per_pair)}


def rng_for(seed: int):
    return np.random.default_rng(seed)
