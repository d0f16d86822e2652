"""`d2m-bench validity`: score every transformation of the battery against the gt, then test.

For every metric with per-clip values and every transformation T:
- the mean over clips with a bootstrap CI (d2m_bench.results.intervals.mean_ci, the protocol's
  [ci] settings);
- the paired difference T - identity per clip, its mean, and the two-sided Wilcoxon
  signed-rank p-value (d2m_bench.results.compare.wilcoxon, zero differences dropped: a metric
  that gives every clip the identity's value has p = 1);
- Holm's step-down correction over the transformations of that metric (one family per
  metric card).
Verdict at ``ALPHA`` (0.01) after Holm: ``detects`` (significantly worse than identity in the
metric's ranking direction), ``rewards`` (significantly better), ``blind`` (no significant
difference). Metrics without per-clip values (LORIS F1 of the means, FAD) are listed with their
values and no test.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import battery

ALPHA = 0.01
CSV_COLUMNS = ["metric", "transformation", "n", "mean", "ci_low", "ci_high", "difference", "p", "p_holm", "verdict",
               "direction"]


def gt_clips(gt) -> list:
    """[(id, path)] of the audio files in a gt folder, sorted by id; UserError when empty."""
    from ..io.audio import MEDIA_EXTENSIONS

    folder = Path(gt)
    if not folder.is_dir():
        raise UserError("--gt is not a folder", folder)
    clips = sorted((p.stem, p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MEDIA_EXTENSIONS and not p.name.startswith("."))
    if len(clips) < 2:
        raise UserError("validity needs at least two gt clips (the shuffled-gt transformation pairs each with another)",
                        folder)
    return clips


def _direction(doc: dict, metric: str) -> str:
    from ..results import directions

    declared = ((doc.get("protocol") or {}).get("params") or {}).get("ranking") or {}
    return declared.get(metric) or directions.default((doc["aggregate"].get(metric) or {}).get("higher_is_better"))


def analyse(docs: dict, *, ci: dict) -> dict:
    """Table rows and metric cards from result documents, transformation -> doc ('identity' required)."""
    from ..results import directions
    from ..results import intervals as iv
    from ..results.compare import holm, per_clip_values, wilcoxon

    base = docs["identity"]
    rows, cards = [], {}
    for metric in base["aggregate"]:
        ref = per_clip_values(base, metric)
        direction = _direction(base, metric)
        if ref is None:
            cards[metric] = {"direction": direction, "tested": False,
                             "reason": "no per-clip values (a statistic of the whole set)",
                             "values": {t: (d["aggregate"].get(metric) or {}).get("value") for t, d in docs.items()}}
            continue
        mrows = []
        for name, doc in docs.items():
            vals = per_clip_values(doc, metric) if metric in doc["aggregate"] else None
            if not vals:
                continue
            ids = sorted(set(vals) & set(ref))
            x = np.array([vals[i] for i in ids])
            d = x - np.array([ref[i] for i in ids])
            interval = iv.mean_ci(x, level=ci["level"], n_resamples=ci["n_resamples"], seed=ci["seed"]) or {}
            test = wilcoxon(d) if name != "identity" and len(d) else {"p": None}
            mrows.append({"metric": metric, "transformation": name, "n": len(ids), "mean": float(x.mean()),
                          "ci_low": (interval.get("percentile") or [None, None])[0],
                          "ci_high": (interval.get("percentile") or [None, None])[1],
                          "difference": float(d.mean()), "p": test["p"], "direction": direction,
                          "excluded": sorted(set(ref) - set(vals))})
        tested = [r for r in mrows if r["p"] is not None]
        for r, p in zip(tested, holm([r["p"] for r in tested]) if tested else []):
            r["p_holm"] = p
            if p >= ALPHA or r["difference"] == 0:
                r["verdict"] = "blind"
            else:
                identity_mean = r["mean"] - r["difference"]
                r["verdict"] = "rewards" if directions.better(r["mean"], identity_mean, direction) else "detects"
        for r in mrows:
            r.setdefault("p_holm", None)
            r.setdefault("verdict", "reference" if r["transformation"] == "identity" else "blind")
        rows += mrows
        cards[metric] = {"direction": direction, "tested": True, "alpha": ALPHA, "correction": "Holm over the card",
                         **{v: [r["transformation"] for r in mrows if r["verdict"] == v]
                            for v in ("detects", "rewards", "blind")}}
    return {"rows": rows, "cards": cards}


def run_validity(gt, *, protocol="d2m-aistpp-2s", out, seed: int = battery.SEED, workers: int | None = 1,
                 progress: bool = False, only=None) -> dict:
    """Write the battery (in a temporary folder), score each transformation (``out/results/<t>.json``),
    analyse (``out/validity.json``, ``out/validity.csv``) and return the analysis document."""
    import shutil
    import tempfile

    from .. import __version__
    from ..evaluation import evaluate
    from ..io.atomic import write_text
    from ..io.audio import load_audio
    from ..progress import progress_bar
    from ..protocol import load_protocol
    from ..results import intervals as iv

    proto = load_protocol(protocol).validate_eval()
    clips = gt_clips(gt)
    out = Path(out)
    names = list(battery.TRANSFORMS) if not only else ["identity"] + [n for n in only if n != "identity"]
    unknown = [n for n in names if n not in battery.TRANSFORMS]
    if unknown:
        raise UserError(f"unknown transformation(s) {', '.join(unknown)} (battery: {', '.join(battery.TRANSFORMS)})")
    sr = proto.get("audio.sample_rate")
    gts = [load_audio(path, sr=sr, res_type=proto.get("audio.resample", "soxr_hq"))[0] for _, path in clips]
    docs = {}
    with tempfile.TemporaryDirectory(prefix="d2m-validity-") as tmp:
        audio = Path(tmp)
        for name in progress_bar(names, desc="validity", unit="transform", disable=not progress, leave=False):
            folder = battery.write_transform(name, clips, gts, audio, sr=sr, seed=seed)
            result = evaluate(folder, gt, protocol=proto, system=f"validity: {name}", workers=workers, cache=True)
            doc = result.to_dict()
            doc["transformation"] = {"name": name, **battery.TRANSFORMS[name], "battery_version": battery.BATTERY_VERSION,
                                     "seed": seed}
            write_text(out / "results" / f"{name}.json", json.dumps(doc, allow_nan=False, default=str) + "\n")
            docs[name] = doc
            shutil.rmtree(folder, ignore_errors=True)  # the transformed audio is not kept
    analysis = analyse(docs, ci=iv.settings(proto.section("ci")))
    doc = {"tool": "d2m-bench", "kind": "validity", "version": __version__, "protocol": proto.to_dict(),
           "gt": str(Path(gt)), "gt_set": docs["identity"]["inputs"].get("gt_set"), "n_clips": len(clips),
           "battery": battery.describe(seed), "test": "Wilcoxon signed-rank of T - identity per clip, two-sided; "
           f"Holm per metric; alpha {ALPHA}", **analysis,
           "aggregates": {t: {m: v.get("value") for m, v in d["aggregate"].items()} for t, d in docs.items()}}
    doc["gt_set"] = {k: v for k, v in (doc["gt_set"] or {}).items() if k != "clips"}
    doc["notes"] = power_notes(len(clips), len(names) - 1)
    write_text(out / "validity.json", json.dumps(doc, indent=1, allow_nan=False) + "\n")
    write_text(out / "validity.csv", csv_text(analysis["rows"]))
    return doc


def power_notes(n: int, m: int) -> list:
    """A note when ``n`` clips cannot reach ALPHA after Holm over ``m`` tests: the smallest
    two-sided exact Wilcoxon p-value of n non-zero paired differences is 2 / 2^n."""
    if m < 1:
        return []
    smallest = min(1.0, m * 2.0 / 2.0 ** n)
    if smallest < ALPHA:
        return []
    return [f"with {n} clips the smallest attainable Holm-adjusted p over {m} transformations is {smallest:.3g} "
            f">= {ALPHA}: no transformation can be detected; use more clips (at least "
            f"{math.ceil(math.log2(2 * m / ALPHA))})"]


def csv_text(rows) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def card_lines(doc: dict) -> list:
    """One line per metric: what it detects, rewards and cannot see."""
    lines = []
    for metric, card in doc["cards"].items():
        if not card["tested"]:
            lines.append(f"{metric}: not tested ({card['reason']})")
            continue
        parts = [f"detects {', '.join(card['detects']) or '-'}", f"rewards {', '.join(card['rewards']) or '-'}",
                 f"blind to {', '.join(card['blind']) or '-'}"]
        lines.append(f"{metric} ({card['direction']}): " + "; ".join(parts))
    return lines


def fmt(v, pct: bool) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.4g}"
