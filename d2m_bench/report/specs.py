"""Figure specifications: the exact numbers each report figure draws, as plain JSON-able dicts.

A spec is computed once from what a result already holds (per-clip scores, event times,
intervals, confusion matrices); the drawing code (figures.py) draws nothing else, and the page
embeds every spec beside its image (``data-spec``), so a figure can be checked against the
result it came from.
"""
from __future__ import annotations

import math

import numpy as np

from ..metrics import beats as bm
from ..results.units import format_value, unit_of


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def metric_column(doc: dict, metric: str) -> str | None:
    """Per-clip column of an aggregate: the one its interval was computed on, or its own name."""
    m = doc["aggregate"].get(metric) or {}
    col = m.get("ci_column")
    if col:
        return col
    if any(_num(r.get(metric)) for r in doc["per_clip"]):
        return metric
    return None


def per_clip_scores(doc: dict, metric: str) -> tuple[list, list]:
    """(clip ids, values) of ``metric``, excluded clips left out, in result order."""
    col = metric_column(doc, metric)
    if col is None:
        return [], []
    excluded = {e.get("id") for e in ((doc.get("excluded") or {}).get("clips") or []) if isinstance(e, dict)
                and e.get("section") in (None, _section_of(metric))}
    ids, vals = [], []
    for r in doc["per_clip"]:
        v = r.get(col)
        if _num(v) and r.get("id") not in excluded:
            ids.append(str(r["id"]))
            vals.append(float(v))
    return ids, vals


def _section_of(metric: str):
    if metric.startswith(("genre_", "fad_")):
        return "genre"
    if metric.startswith("beat_align"):
        return "alignment"
    return None


def distribution_spec(doc: dict, metric: str, fig_id: str) -> dict | None:
    """Histogram + strip plot of one metric's per-clip values, with the mean and its CI."""
    ids, vals = per_clip_scores(doc, metric)
    if not vals:
        return None
    m = doc["aggregate"][metric]
    x = np.asarray(vals)
    distinct = np.unique(x)
    if len(distinct) <= 12 and len(x) >= 2 * len(distinct):  # quantised scores (2-s clips): one bar per value
        edges = None
        centers = distinct.tolist()
        counts = [int((x == v).sum()) for v in distinct]
    else:
        counts_arr, edges_arr = np.histogram(x, bins=min(30, max(5, int(math.sqrt(len(x))))))
        counts, edges = counts_arr.astype(int).tolist(), edges_arr.tolist()
        centers = ((edges_arr[:-1] + edges_arr[1:]) / 2).tolist()
    ci = m.get("ci") if isinstance(m.get("ci"), dict) else None
    # Jitter is seeded by the figure id so a report is the same each time it is written.
    jitter = np.random.default_rng(sum(map(ord, fig_id))).uniform(-0.35, 0.35, len(x)).tolist()
    return {"kind": "distribution", "id": fig_id, "metric": metric, "system": doc.get("system"),
            "n": len(vals), "ids": ids, "values": vals, "jitter": jitter, "centers": centers, "edges": edges,
            "counts": counts, "mean": float(x.mean()), "value": m.get("value"),
            "ci_percentile": ci.get("percentile") if ci else None, "ci_bca": ci.get("bca") if ci else None,
            "ci_level": ci.get("level") if ci else None, "unit": m.get("unit", "fraction"),
            "higher_is_better": m.get("higher_is_better", True)}


def select_clips(doc: dict, metric: str | None, *, worst=5, best=5, random=5, seed=0, chosen=()) -> list:
    """[(clip id, reason)] for the per-clip figures: ``chosen`` ids first, then the ``worst`` and
    ``best`` by ``metric`` (ties by id) and a seeded random sample of the rest; no id twice.

    The reason is the caption: "lowest 5 of 12 by beats_hit; 11 clips tie at 100.0%" (the tie
    is named when the cut leaves clips of the same value out, so a shown clip is never called
    worse than one left out)."""
    known = [str(r.get("id")) for r in doc["per_clip"]]
    out, seen = [], set()

    def add(cid, why):
        if cid in seen:
            return
        seen.add(cid)
        out.append((cid, why))

    for cid in chosen:
        if cid in known:
            add(cid, "chosen")
    if metric is not None:
        ids, vals = per_clip_scores(doc, metric)
        value_of = dict(zip(ids, vals))
        hib = (doc["aggregate"][metric] or {}).get("higher_is_better", True)
        unit = unit_of(doc["aggregate"][metric])
        sign = 1 if hib else -1
        for count, direction, why in ((worst, sign, "lowest"), (best, -sign, "highest")):
            if not hib:  # lower is better: the worst clips have the highest values
                why = {"lowest": "highest", "highest": "lowest"}[why]
            # clips already shown are skipped, so that ties (many 2-s clips score 1.0) still give N more
            fresh = [cid for _, cid in sorted(zip(vals, ids), key=lambda t: (direction * t[0], t[1])) if cid not in seen]
            picked = fresh[:count]
            if not picked:
                continue
            caption = f"{why} {len(picked)} of {len(ids)} by {metric}"
            edge = value_of[picked[-1]]
            ties = sum(v == edge for v in vals)
            if ties > sum(value_of[c] == edge for c in picked):  # the cut falls inside a tie: say so
                caption += f"; {ties} clips tie at {format_value(edge, unit)}"
            for cid in picked:
                add(cid, caption)
    rest = [c for c in known if c not in seen]
    if random and rest:
        pick = np.random.default_rng(seed).choice(len(rest), size=min(random, len(rest)), replace=False)
        for i in sorted(pick):
            add(rest[i], "random sample")
    return out


def beat_spec(doc: dict, row: dict, fig_id: str, why: str) -> dict:
    """Fig. 5 of the D2M-GAN paper, from a per-clip row: gt and predicted onset times, their 1-s
    bins, and which gt bins the prediction hits (envelopes are added by the caller on request)."""
    params = (doc.get("protocol") or {}).get("params") or {}
    beats = params.get("beats") or {}
    sr = (params.get("audio") or {}).get("sample_rate", 22050)
    width = float(beats.get("bin_seconds", 1.0))
    gt_t = [float(t) for t in (row.get("gt_events") or [])]
    pred_t = [float(t) for t in (row.get("pred_events") or [])]
    spec = {"kind": "beats", "id": fig_id, "clip": str(row.get("id")), "why": why, "system": doc.get("system"),
            "gt_events": gt_t, "pred_events": pred_t, "variant": beats.get("variant", "d2m"),
            "seconds": float(row.get("gt_samples") or 0) / sr if row.get("gt_samples") else None,
            "scores": {k: row.get(k) for k in ("beats_coverage", "beats_hit", "loris_coverage", "loris_hit",
                                                "precision", "recall", "f_measure") if _num(row.get(k))},
            "has_events": "gt_events" in row and "pred_events" in row}
    if spec["variant"] in ("d2m", "loris") and spec["has_events"] and row.get("gt_samples"):
        gb = bm.event_bins(gt_t, bm.n_bins(int(row["gt_samples"]), sr, width), width)
        pb = bm.event_bins(pred_t, bm.n_bins(int(row.get("pred_samples") or row["gt_samples"]), sr, width), width)
        n = min(len(gb), len(pb))
        spec.update(bin_seconds=width, gt_bins=gb.astype(int).tolist(), pred_bins=pb.astype(int).tolist(),
                    hit_bins=[int(gb[i] and pb[i]) for i in range(n)])
    return spec


def alignment_spec(doc: dict, row: dict, fig_id: str, why: str) -> dict | None:
    """Motion kinematic beats against music beats (FACT variant) for one clip."""
    kb = row.get("kinematic_beat_frames_fact")
    if kb is None:
        return None
    fps = float(((doc.get("sections") or {}).get("alignment") or {}).get("meta", {}).get("fps")
                or ((doc.get("protocol") or {}).get("params") or {}).get("alignment", {}).get("fps", 60.0))
    return {"kind": "alignment", "id": fig_id, "clip": str(row.get("id")), "why": why, "fps": fps,
            "kinematic": [int(f) for f in kb], "music_pred": [int(f) for f in row.get("music_beat_frames") or []],
            "music_gt": [int(f) for f in row.get("music_beat_frames_gt") or []],
            "scores": {k: row.get(k) for k in ("beat_align_fact", "beat_align_fact_gt") if _num(row.get(k))}}


def genre_spec(doc: dict, fig_id: str) -> dict | None:
    """Confusion matrix heat map with per-genre accuracy and the gt ceiling."""
    agg = doc["aggregate"]
    name = next((k for k in agg if k.startswith("genre_accuracy") and "gt_ceiling" not in k
                 and isinstance((agg[k] or {}).get("confusion"), dict)), None)
    if name is None:
        return None
    m = agg[name]
    conf = m["confusion"]
    labels, matrix = list(conf.get("labels") or []), [list(map(int, r)) for r in conf.get("matrix") or []]
    ceiling = agg.get(name.replace("genre_accuracy", "genre_accuracy_gt_ceiling", 1)) or {}
    support = m.get("support") or {}
    keep = [i for i, lab in enumerate(labels) if support.get(lab) or any(matrix[i]) or any(r[i] for r in matrix)]
    return {"kind": "genre", "id": fig_id, "metric": name, "system": doc.get("system"),
            "labels": [labels[i] for i in keep], "matrix": [[matrix[i][j] for j in keep] for i in keep],
            "accuracy": m.get("value"), "ceiling": ceiling.get("value"), "chance": m.get("chance"),
            "per_genre": m.get("per_genre") or {}, "per_genre_ceiling": ceiling.get("per_genre") or {}}


def mos_spec(doc: dict, fig_id: str) -> dict | None:
    """MOS per system and aspect with its t and bootstrap intervals (from `mos aggregate`)."""
    rows = [r for r in doc.get("systems") or [] if isinstance(r, dict) and _num(r.get("mean"))]
    if not rows:
        return None
    keep = ("system", "aspect", "is_reference", "mean", "ci_t_low", "ci_t_high", "ci_boot_low", "ci_boot_high",
            "n_ratings", "n_raters", "n_items")
    return {"kind": "mos", "id": fig_id, "rows": [{k: r.get(k) for k in keep} for r in rows],
            "aspects": sorted({r["aspect"] for r in rows}), "systems": list(dict.fromkeys(r["system"] for r in rows))}


def fad_spec(doc: dict, metric: str, fig_id: str) -> dict | None:
    """FAD-inf: FAD of generated subsets against 1/N, the fitted line, its intercept, and the
    plain FAD with its bootstrap interval at the full set."""
    m = doc["aggregate"].get(metric) or {}
    inf = m.get("fad_inf")
    if not isinstance(inf, dict) or not inf.get("sizes"):
        return None
    ci = m.get("ci") if isinstance(m.get("ci"), dict) else None
    return {"kind": "fad", "id": fig_id, "metric": metric, "system": doc.get("system"),
            "sizes": inf["sizes"], "fad": inf["fad"], "slope": inf.get("slope"), "intercept": inf.get("value"),
            "r2": inf.get("r2"), "value": m.get("value"), "n_examples": m.get("pred_examples") or inf["sizes"][-1],
            "ci_percentile": ci.get("percentile") if ci else None, "ci_level": ci.get("level") if ci else None}


def systems_spec(docs: list, labels: list, metric: str, fig_id: str) -> dict | None:
    """One metric across several results: each system's mean and percentile CI (the cross-system
    figure); None unless at least two of them hold the metric."""
    rows, units = [], set()
    for doc, name in zip(docs, labels):
        m = doc["aggregate"].get(metric)
        if not isinstance(m, dict) or not _num(m.get("value")):
            continue
        ci = m.get("ci") if isinstance(m.get("ci"), dict) else {}
        pct = ci.get("percentile")
        rows.append({"system": name, "value": float(m["value"]),
                     "ci": [float(pct[0]), float(pct[1])] if pct and all(map(_num, pct)) else None})
        units.add(unit_of(m))
        level = ci.get("level")
    if len(rows) < 2 or len(units) != 1:
        return None
    first = next(d["aggregate"][metric] for d in docs if isinstance(d["aggregate"].get(metric), dict))
    return {"kind": "systems", "id": fig_id, "metric": metric, "unit": units.pop(), "rows": rows,
            "ci_level": level, "higher_is_better": bool(first.get("higher_is_better", True))}
