"""MOS aggregation: screening, per system x aspect statistics, pairwise tests, agreement.

Output document (JSON): protocol name + hash, input digest, screening report, one entry
per system x aspect, pairwise comparisons per aspect (Holm-corrected), agreement per aspect,
and a top-level ``leaderboard`` list (metric ``mos_<aspect>``) read by `d2m-bench leaderboard`.

MOS values from different listening tests are not comparable (raters, context and range
effects differ), so every leaderboard row carries ``comparable_key`` = ``survey:`` + 12 hex
digits naming the listening test (see ``listening_test_key``); the leaderboard ranks rows only
within one key.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import zlib
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..io.cache import file_digest
from ..protocol import Protocol, load_protocol
from ..io.atomic import write_text
from . import stats
from .protocol_check import validate_mos
from .ratings import read_ratings
from .screening import screen

SCHEMA = 1
SYSTEM_COLUMNS = ["system", "aspect", "is_reference", "n_ratings", "n_raters", "n_items", "mean", "median", "std",
                  "sem", "ci_t_low", "ci_t_high", "ci_boot_low", "ci_boot_high", "z_mos", "z_mos_rescaled"]
PAIR_COLUMNS = ["aspect", "system_a", "system_b", "test", "n", "mean_a", "mean_b", "difference",
                "statistic", "effect_size", "p", "p_method", "p_holm", "significant"]
RATER_COLUMNS = ["rater", "kept", "n_ratings", "n_checks", "incomplete_dropped", "outliers_dropped", "reasons"]


def _nan_to_none(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return _nan_to_none(x.item())
    return x


def rater_z_scores(df: pd.DataFrame) -> pd.Series:
    """Per-rater, per-aspect standard scores z = (score - rater mean) / rater sample std.

    A rater with one rating in an aspect has no z (NaN); one with no spread gets 0.
    """
    grp = df.groupby(["rater", "aspect"])["score"]
    mean = grp.transform("mean")
    std = grp.transform(lambda s: s.std(ddof=1) if len(s) > 1 else math.nan)
    z = (df["score"] - mean) / std
    return z.where(~(std == 0), 0.0)


def listening_test_key(df: pd.DataFrame) -> str:
    """``survey:`` + the first 12 hex digits of SHA-256 over the test's design: the sorted,
    distinct (aspect, system, item, stimulus) of its non-trap rows.

    The design, not the file bytes: a later export of the same survey with more ratings of the
    same stimuli (or the rows in another order) keeps its key and replaces the earlier result
    on the leaderboard (an early export that lacks some stimuli gets a key of its own), while
    another survey (other systems, segments or a rebuilt stimulus set, whose
    ids come from the build seed) gets its own key. Trap rows are left out because which trap
    clips were rated so far is not part of what the systems were compared on.
    """
    rows = df.loc[~df["is_trap"], ["aspect", "system", "item", "stimulus"]].astype(str)
    design = sorted(set(map(tuple, rows.itertuples(index=False, name=None))))
    text = "\n".join("\t".join(r) for r in design)
    return "survey:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _seed_for(seed: int, *parts: str) -> list:
    return [int(seed), zlib.crc32("|".join(parts).encode())]


def system_stats(kept: pd.DataFrame, *, level: float, n_boot: int, seed: int) -> list:
    kept = kept.assign(z=rater_z_scores(kept))
    out = []
    for aspect, a in kept.groupby("aspect", sort=True):
        all_mean, all_std = a["score"].mean(), a["score"].std(ddof=1)
        for system, g in a.groupby("system", sort=True):
            s = g["score"].to_numpy(dtype=np.float64)
            n = len(s)
            lo, hi = stats.t_interval(s, level=level)
            boot = stats.bootstrap_two_way(s, pd.factorize(g["rater"])[0], pd.factorize(g["item"])[0],
                                           n_boot=n_boot, level=level, seed=_seed_for(seed, system, aspect))
            z = g["z"].dropna()
            z_mos = float(z.mean()) if len(z) else math.nan
            out.append({"system": system, "aspect": aspect, "is_reference": bool(g["is_reference"].any()),
                        "n_ratings": n, "n_raters": int(g["rater"].nunique()), "n_items": int(g["item"].nunique()),
                        "mean": float(s.mean()), "median": float(np.median(s)),
                        "std": float(s.std(ddof=1)) if n > 1 else math.nan,
                        "sem": float(s.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                        "ci_t_low": lo, "ci_t_high": hi, "ci_boot_low": boot["low"], "ci_boot_high": boot["high"],
                        "bootstrap_valid": boot["n_valid"],
                        "z_mos": z_mos, "z_mos_rescaled": float(all_mean + z_mos * all_std) if n > 1 else math.nan,
                        "histogram": {f"{k:g}": int(v) for k, v in sorted(g["score"].value_counts().items())}})
    return out


def pairwise(kept: pd.DataFrame, *, alpha: float) -> list:
    """Every pair of systems within an aspect: paired Wilcoxon signed-rank on per-item means over
    the items both systems have; Mann-Whitney U on the ratings when they share no item.
    Holm correction over the pairs of one aspect."""
    out = []
    for aspect, a in kept.groupby("aspect", sort=True):
        item_means = a.groupby(["system", "item"])["score"].mean()
        systems = sorted(a["system"].unique())
        rows = []
        for sa, sb in combinations(systems, 2):
            ma, mb = item_means.loc[sa], item_means.loc[sb]
            shared = ma.index.intersection(mb.index)
            if len(shared):
                res = stats.paired_wilcoxon(ma.loc[shared].to_numpy(), mb.loc[shared].to_numpy())
                test, mean_a, mean_b = "wilcoxon_signed_rank_item_means", ma.loc[shared].mean(), mb.loc[shared].mean()
            else:
                ra = a.loc[a["system"] == sa, "score"].to_numpy()
                rb = a.loc[a["system"] == sb, "score"].to_numpy()
                res = stats.mann_whitney(ra, rb)
                test, mean_a, mean_b = "mann_whitney_u_ratings", ra.mean(), rb.mean()
            rows.append({"aspect": aspect, "system_a": sa, "system_b": sb, "test": test, "n": res["n"],
                         "mean_a": float(mean_a), "mean_b": float(mean_b), "difference": float(mean_a - mean_b),
                         "statistic": res["statistic"], "effect_size": res["effect_size"], "p": res["p"],
                         "p_method": res.get("method", "scipy-auto")})
        for row, adj in zip(rows, stats.holm([r["p"] for r in rows])):
            row["p_holm"] = adj
            row["significant"] = bool(adj < alpha) if math.isfinite(adj) else False
        out.extend(rows)
    return out


def agreement(kept: pd.DataFrame, *, level: str) -> dict:
    """Per aspect: Krippendorff alpha (units = item x system stimuli) and one-way ICC."""
    out = {}
    for aspect, a in kept.groupby("aspect", sort=True):
        units = [g.to_numpy(dtype=np.float64) for _, g in a.groupby(["item", "system"])["score"]]
        out[aspect] = {"krippendorff_alpha": stats.krippendorff_alpha(units, level=level),
                       "krippendorff_level": level,
                       "krippendorff_alpha_ordinal": stats.krippendorff_alpha(units, level="ordinal"),
                       "pairable_units": sum(len(u) >= 2 for u in units),
                       **{k: v for k, v in stats.icc_oneway(units).items()}}
    return out


def aggregate(ratings_path: str | os.PathLike, *, protocol: str | os.PathLike | Protocol = "mos-p808",
              seed: int | None = None, n_boot: int | None = None) -> dict:
    """Read, screen and summarise a ratings CSV under a MOS protocol: ``d2m-bench mos aggregate``.

    Args:
        ratings_path: Long-format CSV, one row per rating (columns rater, item, system, aspect,
            score and optional check columns; ``d2m-bench survey export`` writes it).
        protocol: MOS protocol name, TOML path or :class:`~d2m_bench.protocol.Protocol`.
        seed: Bootstrap seed (default: the protocol's ``stats.seed``).
        n_boot: Bootstrap replicates (default: the protocol's ``stats.bootstrap``).

    Returns:
        The document the CLI writes as ``mos.json``: ``screening`` (per rater: kept, reasons),
        ``systems`` (per system x aspect: ``mean``, t and bootstrap CIs, z-scored MOS, counts),
        ``pairwise`` tests, ``agreement``, ``leaderboard`` rows; missing values are None.

    Raises:
        d2m_bench.errors.UserError: an unreadable or malformed CSV or protocol, in one line
            naming the file.
    """
    proto: Protocol = load_protocol(protocol)
    validate_mos(proto)  # every setting, before a rating is read ...
    proto = proto.with_overrides({"stats.seed": seed, "stats.bootstrap": n_boot})
    validate_mos(proto)  # ... and the overrides from the command line
    scale = proto.section("scale")
    st = proto.section("stats")
    df = read_ratings(ratings_path, scale_min=scale.get("min", 1), scale_max=scale.get("max", 5),
                      integer=scale.get("integer", True))
    kept, report = screen(df, proto.section("screening"))
    systems = system_stats(kept, level=st.get("ci_level", 0.95), n_boot=int(st.get("bootstrap", 2000)),
                           seed=int(st.get("seed", 0)))
    key = listening_test_key(df)
    doc = {"schema": SCHEMA, "kind": "mos", "complete": True, "toolkit": f"d2m-bench {__version__}",
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "protocol": proto.to_dict(),
           "input": {"path": str(ratings_path), "sha256": file_digest(Path(ratings_path)), "rows": int(len(df)),
                     "comparable_key": key},
           "screening": report, "systems": systems,
           "pairwise": pairwise(kept, alpha=st.get("alpha", 0.05)),
           "agreement": agreement(kept, level=st.get("krippendorff_level", "interval")),
           "leaderboard": [{"system": s["system"], "protocol": proto.name, "protocol_hash": proto.hash,
                            "comparable_key": key,
                            "metric": f"mos_{s['aspect']}", "value": s["mean"], "unit": "score",
                            "higher_is_better": True, "n": s["n_ratings"],
                            "ci_low": s["ci_t_low"], "ci_high": s["ci_t_high"]} for s in systems]}
    return _nan_to_none(doc)


def _csv_text(rows, columns) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("; ".join(v) if isinstance(v, list) else ("" if v is None else v)) for k, v in r.items()})
    return buf.getvalue()


def output_paths(out) -> list:
    """The files ``write_outputs`` writes for ``out``: mos.json and the three CSVs."""
    out = Path(out)
    if out.suffix.lower() == ".json":
        json_path, stem = out, out.with_suffix("")
    else:
        json_path, stem = out / "mos.json", out / "mos"
    return [json_path, Path(f"{stem}_systems.csv"), Path(f"{stem}_raters.csv"), Path(f"{stem}_pairwise.csv")]


def write_outputs(doc: dict, out) -> list:
    """Write ``mos.json`` and three CSVs (systems, raters, pairwise). ``out`` is a folder, or a
    ``.json`` path whose stem names the CSVs beside it. Returns the written paths."""
    paths = output_paths(out)
    write_text(paths[0], json.dumps(doc, indent=2) + "\n")
    write_text(paths[1], _csv_text(doc["systems"], SYSTEM_COLUMNS))
    write_text(paths[2], _csv_text(doc["screening"]["raters"], RATER_COLUMNS))
    write_text(paths[3], _csv_text(doc["pairwise"], PAIR_COLUMNS))
    return paths
