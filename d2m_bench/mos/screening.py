"""Rater and rating screening for listening tests (ITU-T P.808 practices).

Rater level (the whole session is dropped, each reason reported): failed trapping clips
(a spoken instruction asks for a given score), failed gold items (known answer, tolerance),
hidden references rated low too often (MUSHRA-style post-screening), flat raters (no variance
within an aspect), too many incompletely played stimuli, too many outlier ratings.
Rating level: ratings made without full playback, and ratings with |z| >= threshold within
their system x aspect (P.808 per-condition outlier rule; z from mean and sample std).
Check rows (traps and gold items) never enter the system statistics.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

DEFAULTS = {"trap_tolerance": 0, "max_trap_failures": 0, "gold_tolerance": 1, "max_gold_failures": 0,
            "reference_min_score": 2, "reference_max_fail_fraction": 0.15, "flat_max_variance": 0.0,
            "flat_min_ratings": 3, "require_playback_complete": True, "max_incomplete_fraction": 0.2,
            "z_threshold": 3.29, "max_outlier_fraction": 0.2}


def _is_check(df: pd.DataFrame) -> pd.Series:
    return df["is_trap"] | df["expected_score"].notna()


def _rater_reasons(g: pd.DataFrame, p: dict) -> tuple[list, int]:
    """Reasons to drop one rater (before outliers) and their count of incomplete ratings."""
    reasons = []
    traps = g[g["is_trap"]]
    bad = traps[(traps["score"] - traps["expected_score"]).abs() > p["trap_tolerance"]]
    if len(bad) > p["max_trap_failures"]:
        detail = ", ".join(f"{r.item} rated {r.score:g} (asked {r.expected_score:g})" for r in bad.itertuples())
        reasons.append(f"trap: failed {len(bad)} of {len(traps)} ({detail})")
    gold = g[~g["is_trap"] & g["expected_score"].notna()]
    bad = gold[(gold["score"] - gold["expected_score"]).abs() > p["gold_tolerance"]]
    if len(bad) > p["max_gold_failures"]:
        detail = ", ".join(f"{r.item} rated {r.score:g} (expected {r.expected_score:g})" for r in bad.itertuples())
        reasons.append(f"gold: {len(bad)} of {len(gold)} off by more than {p['gold_tolerance']:g} ({detail})")
    normal = g[~_is_check(g)]
    ref = normal[normal["is_reference"]]
    if len(ref):
        low = int((ref["score"] < p["reference_min_score"]).sum())
        if low / len(ref) > p["reference_max_fail_fraction"]:
            reasons.append(f"reference: hidden reference rated below {p['reference_min_score']:g} on {low} of {len(ref)} "
                           f"(> {p['reference_max_fail_fraction']:.0%})")
    incomplete = int((normal["playback_complete"] == False).sum())  # noqa: E712 (None = unknown)
    if len(normal) and incomplete / len(normal) > p["max_incomplete_fraction"]:
        reasons.append(f"playback: {incomplete} of {len(normal)} stimuli not played to the end "
                       f"(> {p['max_incomplete_fraction']:.0%})")
    for aspect, a in normal.groupby("aspect", sort=True):
        if len(a) >= p["flat_min_ratings"] and float(np.var(a["score"].to_numpy())) <= p["flat_max_variance"]:
            reasons.append(f"flat: all {len(a)} {aspect} ratings are {a['score'].iloc[0]:g}")
    return reasons, incomplete


def screen(df: pd.DataFrame, params: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Screen ratings. Returns (kept system ratings, report).

    The report has one entry per rater (``kept``, ``reasons``, counts of dropped ratings) and
    totals. The kept frame holds only non-check ratings of kept raters, minus dropped ratings.
    """
    p = {**DEFAULTS, **(params or {})}
    raters = {}
    for rater, g in df.groupby("rater", sort=True):
        reasons, incomplete = _rater_reasons(g, p)
        raters[rater] = {"rater": rater, "n_ratings": int(len(g)), "n_checks": int(_is_check(g).sum()),
                         "kept": not reasons, "reasons": reasons, "incomplete_dropped": 0, "outliers_dropped": 0}
    keep = df[~_is_check(df) & df["rater"].map(lambda r: raters[r]["kept"])].copy()
    if p["require_playback_complete"]:
        incomplete = keep["playback_complete"] == False  # noqa: E712
        for rater, n in keep[incomplete].groupby("rater").size().items():
            raters[rater]["incomplete_dropped"] = int(n)
        keep = keep[~incomplete]
    # Per-condition outliers, one pass on the ratings left after the rater checks.
    grp = keep.groupby(["system", "aspect"])["score"]
    mean, std = grp.transform("mean"), grp.transform(lambda s: s.std(ddof=1) if len(s) > 1 else math.nan)
    z = ((keep["score"] - mean) / std).where(std > 0, 0.0).fillna(0.0)
    outlier = z.abs() >= p["z_threshold"]
    for rater, n in keep[outlier].groupby("rater").size().items():
        info = raters[rater]
        info["outliers_dropped"] = int(n)
        n_normal = info["n_ratings"] - info["n_checks"]
        if n / n_normal > p["max_outlier_fraction"]:
            info["kept"] = False
            info["reasons"].append(f"outlier: {n} of {n_normal} ratings with |z| >= {p['z_threshold']:g} "
                                   f"(> {p['max_outlier_fraction']:.0%})")
    keep = keep[~outlier & keep["rater"].map(lambda r: raters[r]["kept"])]
    rows = list(raters.values())
    summary = {"raters": len(rows), "raters_kept": sum(r["kept"] for r in rows),
               "ratings": int(len(df)), "check_ratings": int(_is_check(df).sum()),
               "ratings_kept": int(len(keep)),
               "ratings_dropped_incomplete": sum(r["incomplete_dropped"] for r in rows),
               "ratings_dropped_outlier": sum(r["outliers_dropped"] for r in rows),
               "params": p}
    return keep.reset_index(drop=True), {"summary": summary, "raters": rows}
