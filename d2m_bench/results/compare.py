"""Paired comparison of eval results on the same clips: is system B better than system A?

For every pair of results (A, B) and every metric that is a mean over clips, on the clips both
results scored: the mean difference d = B - A with a paired bootstrap CI (clips resampled, the
pairing kept; percentile and BCa, d2m_bench.results.intervals), the Wilcoxon signed-rank p-value
(scipy.stats.wilcoxon, zero differences dropped, exact below 50 pairs), two effect sizes (the
matched-pairs rank-biserial correlation r = (W+ - W-) / (W+ + W-) and Cohen's d_z = mean(d) /
sd(d)), and Holm's step-down correction across every metric and every pair in the run.

Results are compared only under one protocol hash and, metric by metric, one comparable key
(the embedder weights of genre metrics): anything else is refused, naming what differs.
Set statistics (FAD) have no per-clip values and are listed as not compared.
"""
from __future__ import annotations

import csv
import io
import json
import math
from itertools import combinations
from pathlib import Path

import numpy as np

from . import intervals as iv
from ..io.atomic import write_text
from ..errors import UserError
from ..io.text import plain
from .schema import MAX_RESAMPLE_CELLS, MAX_RESAMPLES, check_result
from .tables import format_table
from .units import format_difference, format_interval, format_value, unit_of

CSV_COLUMNS = ["metric", "system_a", "system_b", "n", "mean_a", "mean_b", "difference", "ci_low", "ci_high",
               "ci_bca_low", "ci_bca_high", "wilcoxon_statistic", "p", "p_method", "p_holm", "significant",
               "rank_biserial", "cohen_dz", "better", "higher_is_better", "unit"]


def load_result(path) -> dict:
    """An eval result JSON; a one-line UserError for anything else."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError("no such result file", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"not a readable JSON result ({exc.__class__.__name__}: {exc})", path) from None
    if not isinstance(doc, dict) or doc.get("tool") != "d2m-bench" or "aggregate" not in doc:
        raise UserError("not a d2m-bench eval result (needs protocol, aggregate and per_clip)", path)
    check_result(doc, path)  # every field compare reads, named when malformed
    doc["_path"] = str(path)
    return doc


def label(doc: dict) -> str:
    # Printed in tables and one-line messages: a name from the file must not break lines.
    return plain(doc.get("_label") or doc.get("system") or Path(doc.get("_path", "result")).stem)


def _unique_labels(docs) -> None:
    """Two results with one system name are told apart by their file name (then by position)."""
    names = [label(d) for d in docs]
    for i, d in enumerate(docs):
        if names.count(names[i]) > 1:
            d["_label"] = f"{names[i]} ({Path(d.get('_path', '')).name or i + 1})"
    names = [label(d) for d in docs]
    for i, d in enumerate(docs):
        if names.count(names[i]) > 1:
            d["_label"] = f"{names[i]} #{i + 1}"


def comparable_keys(doc: dict) -> dict:
    """metric -> comparable key, from the result's leaderboard rows or, without a system name,
    from its genre section (as EvalResult.comparable_keys computes them)."""
    rows = doc.get("leaderboard") or []
    keys = {r.get("metric"): r.get("comparable_key") or "" for r in rows if isinstance(r, dict)}
    if keys:
        return keys
    genre = (doc.get("sections") or {}).get("genre") or {}
    if genre.get("status") != "ok":
        return {}
    from .result import embedder_key

    key = embedder_key(genre.get("meta") or {})
    return {m: key for m in doc["aggregate"] if m.startswith(("genre_", "fad_"))} if key else {}


def check_comparable(docs) -> None:
    """Refuse results under different protocol hashes or comparable keys (one line)."""
    hashes = {label(d) + f" ({Path(d['_path']).name})": d["protocol"].get("hash") for d in docs}
    if len(set(hashes.values())) > 1:
        raise UserError("protocol hashes differ: " + ", ".join(f"{k} {str(v)[:12]}" for k, v in hashes.items()))
    keys = [comparable_keys(d) for d in docs]
    for metric in sorted(set().union(*keys)):
        seen = {label(d): k.get(metric, "") for d, k in zip(docs, keys) if metric in d["aggregate"]}
        if len(set(seen.values())) > 1:
            raise UserError(f"comparable keys differ for {metric}: "
                            + ", ".join(f"{s} {k or '(none)'}" for s, k in seen.items()))


def per_clip_values(doc: dict, metric: str) -> dict | None:
    """clip id -> value of ``metric``, from the column its interval was computed on; None for
    set statistics (FAD) and metrics without a per-clip column."""
    m = doc["aggregate"].get(metric) or {}
    col = m.get("ci_column")
    if col is None:
        if metric.startswith("fad") or metric == "loris_f1":
            return None
        found = next(iter(iv.column_for(metric, m, doc["per_clip"])), None)
        if found is None:
            return None
        col = found[0]
    # an exclusion from a section (genre, alignment) leaves the clip in the beat metrics, and back
    section = "genre" if metric.startswith(("genre_", "fad_")) else "alignment" if metric.startswith("beat_align") else None
    excluded = {e.get("id") for e in (doc.get("excluded") or {}).get("clips", [])
                if isinstance(e, dict) and e.get("section") == section}
    out = {}
    for r in doc["per_clip"]:
        v = r.get(col)
        if r.get("id") not in excluded and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[r["id"]] = float(v)
    return out


def holm(pvalues) -> list:
    """Holm's step-down adjusted p-values, in the input order."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def wilcoxon(d) -> dict:
    """Two-sided Wilcoxon signed-rank test of the differences (zeros dropped)."""
    from scipy import stats

    d = np.asarray(d, float)
    nz = d[d != 0]
    if len(nz) == 0:
        return {"statistic": 0.0, "p": 1.0, "method": "all differences zero", "rank_biserial": 0.0}
    ranks = stats.rankdata(np.abs(nz))
    w_plus, w_minus = float(ranks[nz > 0].sum()), float(ranks[nz < 0].sum())
    exact = len(nz) < 50 and len(np.unique(np.abs(nz))) == len(nz)
    res = stats.wilcoxon(nz, method="exact" if exact else "approx")
    return {"statistic": float(res.statistic), "p": float(res.pvalue), "method": "exact" if exact else "normal",
            "rank_biserial": (w_plus - w_minus) / (w_plus + w_minus)}


def compare_pair(a: dict, b: dict, metric: str, ci: dict) -> dict | None:
    va, vb = per_clip_values(a, metric), per_clip_values(b, metric)
    if va is None or vb is None:
        return None
    ids = sorted(set(va) & set(vb))
    if len(ids) < 2:
        return None
    xa, xb = np.array([va[i] for i in ids]), np.array([vb[i] for i in ids])
    d = xb - xa
    interval = iv.mean_ci(d, level=ci["level"], n_resamples=ci["n_resamples"], seed=ci["seed"])
    w = wilcoxon(d)
    sd = float(d.std(ddof=1))
    hib = bool((a["aggregate"][metric] or {}).get("higher_is_better", True))
    unit = unit_of(a["aggregate"][metric])
    return {"metric": metric, "system_a": label(a), "system_b": label(b), "n": len(ids),
            "mean_a": float(xa.mean()), "mean_b": float(xb.mean()), "difference": float(d.mean()),
            "ci_low": interval["percentile"][0], "ci_high": interval["percentile"][1],
            "ci_bca_low": (interval["bca"] or [None, None])[0], "ci_bca_high": (interval["bca"] or [None, None])[1],
            "wilcoxon_statistic": w["statistic"], "p": w["p"], "p_method": w["method"],
            "rank_biserial": w["rank_biserial"], "cohen_dz": float(d.mean()) / sd if sd > 0 else None,
            "higher_is_better": hib, "unit": unit}


def compare(docs, *, level=None, n_resamples=None, seed=None, alpha=0.05) -> dict:
    """Compare every pair of results (order kept: B - A for A listed first)."""
    if len(docs) < 2:
        raise UserError("compare needs at least two results")
    _unique_labels(docs)
    check_comparable(docs)
    ci = iv.settings((docs[0]["protocol"].get("params") or {}).get("ci"))
    ci.update({k: v for k, v in (("level", level), ("n_resamples", n_resamples), ("seed", seed)) if v is not None})
    # The bootstrap draws resamples x clips indices at once: bounded before any is drawn.
    n_clips = max(len(d["per_clip"]) for d in docs)
    if not 1 <= ci["n_resamples"] <= MAX_RESAMPLES or ci["n_resamples"] * n_clips > MAX_RESAMPLE_CELLS:
        raise UserError(f"{ci['n_resamples']:,} bootstrap resamples of {n_clips:,} clips is more than d2m-bench draws "
                        f"(at most {MAX_RESAMPLES:,} resamples and {MAX_RESAMPLE_CELLS:,} resamples x clips)")
    metrics = [m for m in docs[0]["aggregate"] if all(m in d["aggregate"] for d in docs)]
    rows, pairing, skipped = [], [], []
    for a, b in combinations(docs, 2):
        ia = {r.get("id") for r in a["per_clip"]}
        ib = {r.get("id") for r in b["per_clip"]}
        pairing.append({"system_a": label(a), "system_b": label(b), "common": len(ia & ib),
                        "only_a": sorted(ia - ib), "only_b": sorted(ib - ia)})
        for metric in metrics:
            row = compare_pair(a, b, metric, ci)
            if row is None:
                if (label(a), metric) not in skipped:
                    skipped.append((label(a), metric))
                continue
            rows.append(row)
    for row, p in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = p
        row["significant"] = p < alpha
        better = row["difference"] > 0 if row["higher_is_better"] else row["difference"] < 0
        row["better"] = (row["system_b"] if better else row["system_a"]) if row["significant"] else "-"
    not_compared = sorted({m for _, m in skipped})
    return {"tool": "d2m-bench", "kind": "compare",
            "protocol": {"name": docs[0]["protocol"].get("name"), "hash": docs[0]["protocol"].get("hash")},
            "results": [{"system": label(d), "path": d["_path"], "n_clips": len(d["per_clip"])} for d in docs],
            "ci": {"level": ci["level"], "n_resamples": ci["n_resamples"], "seed": ci["seed"],
                   "method": "paired bootstrap over clips of the per-clip difference B - A"},
            "test": "Wilcoxon signed-rank, two-sided; Holm across all metrics and pairs", "alpha": alpha,
            "pairing": pairing, "comparisons": rows,
            "not_compared": {m: "no per-clip values (set statistic or missing column)" for m in not_compared}}


def csv_text(doc: dict) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(doc["comparisons"])
    return buf.getvalue()


def write_outputs(doc: dict, out, inputs=()) -> list:
    """compare.json and compare.csv in ``out``; ``inputs`` (the result files) are never overwritten."""
    from ..io.outputs import check_output_folder

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("--out must be a folder", out)
    check_output_folder("--out", out, {"RESULTS": list(inputs)}, claims=("compare.json", "compare.csv"))
    paths = [out / "compare.json", out / "compare.csv"]
    write_text(paths[0], json.dumps(doc, indent=2, allow_nan=False) + "\n")
    write_text(paths[1], csv_text(doc))
    return paths


def table(doc: dict) -> str:
    """The terminal table of `d2m-bench compare`: means and differences in the metric's display
    unit (a difference of percentages in percentage points, "pp"), p-values to 3 digits."""
    def p3(v):
        return "-" if v is None else f"{v:.3g}"

    lines = [f"protocol {plain(doc['protocol']['name'])} ({str(doc['protocol']['hash'])[:12]})  "
             f"{int(doc['ci']['level'] * 100)}% paired bootstrap CI ({doc['ci']['n_resamples']} resamples, "
             f"seed {doc['ci']['seed']}); Wilcoxon, Holm over {len(doc['comparisons'])} tests"]
    for p in doc["pairing"]:
        line = f"{p['system_a']} vs {p['system_b']}: {p['common']} common clips"
        if p["only_a"]:
            line += f"; only in {p['system_a']}: {', '.join(map(plain, p['only_a'][:10]))}" + (" ..." if len(p["only_a"]) > 10 else "")
        if p["only_b"]:
            line += f"; only in {p['system_b']}: {', '.join(map(plain, p['only_b'][:10]))}" + (" ..." if len(p["only_b"]) > 10 else "")
        lines.append(line)
    rows = []
    for r in doc["comparisons"]:
        unit = r.get("unit", "fraction")
        rows.append([r["metric"], r["system_a"], r["system_b"], r["n"], format_value(r["mean_a"], unit),
                     format_value(r["mean_b"], unit), format_difference(r["difference"], unit),
                     format_interval(r["ci_low"], r["ci_high"], unit, difference=True), p3(r["p"]), p3(r["p_holm"]),
                     f"{r['rank_biserial']:+.2f}", r["better"]])
    if rows:
        lines.append(format_table(rows, ["metric", "A", "B", "n", "mean A", "mean B", "B-A", "CI (percentile)", "p",
                                         "p_holm", "r_rb", "better"],
                                  align=["left", "left", "left", "right", "right", "right", "right", "left", "right",
                                         "right", "right", "left"]))
    for m, why in doc["not_compared"].items():
        lines.append(f"not compared: {m} ({why})")
    return "\n".join(lines)
