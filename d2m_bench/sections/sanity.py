"""The sanity section: level of the predictions against the ground truth, silence, sameness.

The beat metrics normalise the onset envelope, so a near-silent prediction (a diverged model
writing mean |y| 0.001 against a gt at 0.0075) can score Beats Coverage/Hit 100 % / 100 %.
The metric values stay as the published procedures compute them; this module only measures
and warns. Per clip, at each file's own rate (channel mean, no resampling):

- RMS level in dBFS of the prediction and of the gt, and their ratio in dB;
- integrated loudness in LUFS as ITU-R BS.1770-4 defines it for one channel: K-weighting
  (a high-shelf and a high-pass biquad), mean square over 400-ms blocks every 100 ms, the
  absolute gate at -70 LUFS and the relative gate 10 LU below the mean of the blocks above it;
  a clip shorter than one block is one block. The filters are the standard's analog
  prototypes mapped to each sample rate (at 48 kHz they give the standard's coefficients);
- flags: ``pred_silent`` (RMS below ``SILENT_DBFS``), ``pred_flat`` (the level after removing
  the mean, i.e. a constant or DC signal, below ``SILENT_DBFS``), ``pred_quiet`` (more than
  ``QUIET_DB`` below the gt), ``gt_silent``.
Across clips: predictions whose 50-ms RMS envelopes (first 10 s) are all within
``SAME_SPREAD`` of their mean are flagged as the same output for every input.

The levels are computed in eval's worker pass from the same decode as the onsets (``run_pair``)
and cached by content, so a second run decodes nothing.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from . import Section

NAME = "sanity"

SILENT_DBFS = -60.0  # RMS below this: near-silent (16-bit dither sits near -101 dBFS)
QUIET_DB = -15.0  # prediction this many dB below its gt: far quieter than the music it imitates
SAME_SPREAD = 1e-3  # relative envelope spread below which predictions count as one output
ENVELOPE_FRAME = 0.05  # s
ENVELOPE_SECONDS = 10.0
BLOCK, STEP = 0.4, 0.1  # BS.1770 gating block and hop, s
ABSOLUTE_GATE, RELATIVE_GATE = -70.0, -10.0
THRESHOLDS = {"silent_dbfs": SILENT_DBFS, "quiet_db": QUIET_DB, "same_spread": SAME_SPREAD,
              "envelope": {"frame_s": ENVELOPE_FRAME, "seconds": ENVELOPE_SECONDS}}

# BS.1770 K-weighting as analog prototypes (De Man's fit of the standard's 48-kHz coefficients):
# stage 1 high shelf, stage 2 high-pass (RLB).
_SHELF = {"f0": 1681.974450955533, "gain_db": 3.999843853973347, "q": 0.7071752369554196}
_HIGHPASS = {"f0": 38.13547087602444, "q": 0.5003270373238773}


def _db(power_ratio: float) -> float | None:
    """10 log10 of a power ratio; None for 0 (JSON has no -inf)."""
    return 10.0 * math.log10(power_ratio) if power_ratio > 0 else None


def k_weighting(sr: int) -> np.ndarray:
    """Second-order sections (2, 6) of the BS.1770 K-weighting filter at ``sr``."""
    k = math.tan(math.pi * _SHELF["f0"] / sr)
    vh = 10.0 ** (_SHELF["gain_db"] / 20.0)
    vb = vh ** 0.4996667741545416
    q = _SHELF["q"]
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    k = math.tan(math.pi * _HIGHPASS["f0"] / sr)
    q = _HIGHPASS["q"]
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def integrated_loudness(y, sr: int) -> float | None:
    """BS.1770-4 gated loudness (LUFS) of a mono signal; None when every block is below the
    absolute gate (silence)."""
    from scipy.signal import sosfilt

    z = sosfilt(k_weighting(sr), np.asarray(y, dtype=np.float64)) ** 2
    block, step = int(round(BLOCK * sr)), int(round(STEP * sr))
    if len(z) <= block:
        powers = np.array([z.mean()]) if len(z) else np.zeros(0)
    else:
        c = np.concatenate([[0.0], np.cumsum(z)])
        starts = np.arange(0, len(z) - block + 1, step)
        powers = (c[starts + block] - c[starts]) / block
    with np.errstate(divide="ignore"):
        loud = -0.691 + 10.0 * np.log10(powers)
    above = powers[loud > ABSOLUTE_GATE]
    if not len(above):
        return None
    relative = -0.691 + 10.0 * math.log10(above.mean()) + RELATIVE_GATE
    kept = above[-0.691 + 10.0 * np.log10(above) > relative]
    return -0.691 + 10.0 * math.log10(kept.mean())


def levels(y, sr: int) -> dict:
    """RMS (dBFS), RMS after removing the mean (dBFS), mean |y|, peak and loudness (LUFS)."""
    y = np.asarray(y, dtype=np.float64)
    ms = float(np.mean(y * y)) if len(y) else 0.0
    ac = float(np.var(y)) if len(y) else 0.0
    return _levels_from(ms, ac, float(np.mean(np.abs(y))) if len(y) else 0.0,
                        float(np.max(np.abs(y))) if len(y) else 0.0, integrated_loudness(y, sr))


def _levels_from(ms, var, mean_abs, peak, lufs) -> dict:
    return {"rms_dbfs": _db(float(ms)), "ac_rms_dbfs": _db(float(var)), "mean_abs": float(mean_abs),
            "peak": float(peak), "lufs": lufs, "_ms": float(ms), "_var": float(var)}


def envelope(y, sr: int) -> np.ndarray:
    """RMS in 50-ms frames over the first 10 s: a cheap fingerprint of a clip's output."""
    frame = max(1, int(round(ENVELOPE_FRAME * sr)))
    y = np.asarray(y, dtype=np.float64)[: int(ENVELOPE_SECONDS * sr)]
    n = len(y) // frame
    return np.sqrt(np.mean(y[: n * frame].reshape(n, frame) ** 2, axis=1)) if n else np.zeros(0)


def envelope_spread(envelopes) -> float | None:
    """Mean distance of the envelopes (cut to the shortest) to their mean, relative to the
    mean's norm; None for fewer than two clips or an all-zero mean."""
    if len(envelopes) < 2:
        return None
    n = min(len(e) for e in envelopes)
    if n == 0:
        return None
    e = np.stack([np.asarray(v[:n]) for v in envelopes])
    centre = e.mean(axis=0)
    norm = float(np.linalg.norm(centre))
    return float(np.mean(np.linalg.norm(e - centre, axis=1)) / norm) if norm > 0 else None


def clip_row(pred: dict, gt: dict) -> dict:
    """Per-clip sanity columns from the ``levels`` of a prediction and its gt."""
    ratio = _db(pred["_ms"] / gt["_ms"]) if gt["_ms"] > 0 and pred["_ms"] > 0 else None
    diff = pred["lufs"] - gt["lufs"] if pred["lufs"] is not None and gt["lufs"] is not None else None
    silent = pred["rms_dbfs"] is None or pred["rms_dbfs"] < SILENT_DBFS
    return {"pred_rms_dbfs": pred["rms_dbfs"], "gt_rms_dbfs": gt["rms_dbfs"], "rms_ratio_db": ratio,
            "pred_mean_abs": pred["mean_abs"], "gt_mean_abs": gt["mean_abs"],
            "pred_lufs": pred["lufs"], "gt_lufs": gt["lufs"], "loudness_diff_lu": diff,
            "pred_silent": bool(silent),
            "pred_flat": bool(pred["ac_rms_dbfs"] is None or pred["ac_rms_dbfs"] < SILENT_DBFS),
            "pred_quiet": bool(ratio is not None and ratio < QUIET_DB) or bool(silent and gt["_ms"] > 0),
            "gt_silent": bool(gt["rms_dbfs"] is None or gt["rms_dbfs"] < SILENT_DBFS)}


def _listed(ids, limit=5) -> str:
    return ", ".join(ids[:limit]) + (" ..." if len(ids) > limit else "")


# Bump when the cached entry's layout or the meaning of a stored number changes.
LEVELS_SCHEMA = 1
_STORED = 6  # mean square, variance, mean |y|, peak, has loudness (0/1), loudness


def enabled(protocol) -> bool:
    return True


def check(protocol, ctx) -> None:
    """Nothing to fetch."""


def pair_step(protocol, ctx) -> dict:
    from ..io.cache import default_root

    return {"cache": ctx.cache, "cache_root": str(default_root())}


@lru_cache(maxsize=1)
def _levels_config() -> dict:
    """The cache key's configuration (one object: its canonical JSON is computed once a run)."""
    from ..features.events import code_versions

    return {"levels": LEVELS_SCHEMA, "mix": "mean", "thresholds": THRESHOLDS, "versions": code_versions()}


def _file_levels(source, cache) -> tuple[dict, np.ndarray]:
    """``(levels, envelope)`` of one file at its own rate (channel mean), from the cache when the
    same bytes were measured before. Stored: mean square, variance, mean |y|, peak, whether the
    loudness is defined and its value (the cache holds finite numbers only), then the envelope;
    the dB figures are recomputed from them, so a cached run gives the same numbers to the bit."""
    key = None
    if cache is not None and cache.enabled:
        key = cache.key(source.digest(), _levels_config())
        hit = cache.get(key, ndim=1)
        if hit is not None and len(hit) >= _STORED and (hit[:4] >= 0).all() and hit[4] in (0.0, 1.0):
            lufs = float(hit[5]) if hit[4] else None
            return _levels_from(*hit[:4], lufs), np.asarray(hit[_STORED:])
    y, sr, _ = source.prepared(None, mix="mean")
    lv, env = levels(y, sr), envelope(y, sr)
    if key is not None:
        defined = lv["lufs"] is not None
        stored = [lv["_ms"], lv["_var"], lv["mean_abs"], lv["peak"], float(defined), lv["lufs"] if defined else 0.0]
        try:
            cache.put(key, np.concatenate([stored, env]))
        except OSError:
            cache.enabled = False  # full disk or a directory gone read-only mid-run: go on uncached
    return lv, env


def run_pair(pair, files, config) -> dict | None:
    """Levels of the prediction and its gt, and the prediction's envelope."""
    from ..features.worker import cache_for

    if pair.pred is None:
        return None
    cache = cache_for("levels", config["cache_root"], config["cache"])
    pred, env = _file_levels(files["pred"], cache)
    gt, _ = _file_levels(files["gt"], cache)
    return {"row": clip_row(pred, gt), "envelope": env}


def score(rows, protocol, ctx) -> Section:
    """Per-clip levels and flags, and warnings, from the worker pass's measurements and the
    predictions' provenance."""
    from ..io.provenance import model_warnings

    per_clip, envelopes = {}, []
    for pair, out in zip(ctx.pairs, ctx.pair_data[NAME]):
        if out is not None:
            per_clip[pair.id] = out["row"]
            envelopes.append(out["envelope"])
    section = summarise(per_clip, envelopes)
    recorded = model_warnings(ctx.provenance)  # what the run that generated --pred said of itself
    if recorded:
        section.setdefault("warnings", []).extend(recorded)
    return section


def sanity_section(pairs, *, progress=False) -> Section:
    """The section for ``pairs`` computed here, one file after another, without the cache
    (eval computes the same in its worker pass)."""
    from ..features.worker import FileSource
    from ..progress import progress_bar

    per_clip, envelopes = {}, []
    for pair in progress_bar(pairs, desc="sanity", unit="pair", disable=not progress, leave=False):
        if pair.pred is None:
            continue
        pred, env = _file_levels(FileSource(pair.pred), None)
        gt, _ = _file_levels(FileSource(pair.gt), None)
        per_clip[pair.id] = clip_row(pred, gt)
        envelopes.append(env)
    return summarise(per_clip, envelopes)


def summarise(per_clip: dict, envelopes: list) -> Section:
    """``{"status", "meta", "summary", "per_clip", "warnings"}`` from the clips' rows and envelopes."""
    if not per_clip:
        return {"status": "skipped", "reason": "no prediction to check"}
    rows = list(per_clip.values())
    n = len(rows)
    ratios = [r["rms_ratio_db"] for r in rows if r["rms_ratio_db"] is not None]
    diffs = [r["loudness_diff_lu"] for r in rows if r["loudness_diff_lu"] is not None]
    flagged = {k: [i for i, r in per_clip.items() if r[k]] for k in ("pred_silent", "pred_flat", "pred_quiet", "gt_silent")}
    spread = envelope_spread(envelopes) if n >= 3 else None
    same = spread is not None and spread < SAME_SPREAD
    summary = {"n": n, "median_rms_ratio_db": float(np.median(ratios)) if ratios else None,
               "median_loudness_diff_lu": float(np.median(diffs)) if diffs else None,
               "pred_mean_abs": float(np.mean([r["pred_mean_abs"] for r in rows])),
               "gt_mean_abs": float(np.mean([r["gt_mean_abs"] for r in rows])),
               **{f"n_{k}": len(v) for k, v in flagged.items()},
               "envelope_spread": spread, "same_output_for_every_clip": same}
    note = ("; beat metrics normalise the onset envelope and can still score such predictions high "
            "(see sections.sanity)")
    warns = []
    if flagged["pred_silent"] or flagged["pred_flat"]:
        bad = list(dict.fromkeys(flagged["pred_silent"] + flagged["pred_flat"]))
        warns.append(f"{len(bad)} of {n} prediction(s) near-silent or constant (RMS or AC RMS below "
                     f"{SILENT_DBFS:g} dBFS): {_listed(bad)}{note}")
    if summary["median_rms_ratio_db"] is not None and summary["median_rms_ratio_db"] < QUIET_DB:
        warns.append(f"predictions are {-summary['median_rms_ratio_db']:.1f} dB quieter than the gt (median RMS "
                     f"ratio; mean |y| {summary['pred_mean_abs']:.3g} vs {summary['gt_mean_abs']:.3g}){note}")
    elif flagged["pred_quiet"]:
        warns.append(f"{len(flagged['pred_quiet'])} of {n} prediction(s) more than {-QUIET_DB:g} dB quieter than "
                     f"their gt: {_listed(flagged['pred_quiet'])}")
    if same:
        warns.append(f"the {n} predictions are nearly the same signal (envelope spread {spread:.2g} < "
                     f"{SAME_SPREAD:g}): the model may ignore its input{note}")
    if flagged["gt_silent"]:
        warns.append(f"{len(flagged['gt_silent'])} gt clip(s) near-silent: {_listed(flagged['gt_silent'])}")
    meta = {"thresholds": THRESHOLDS, "rate": "each file's own (channel mean, no resampling)",
            "loudness": "ITU-R BS.1770-4 integrated loudness (K-weighted, gated), LUFS"}
    return {"status": "ok", "meta": meta, "summary": summary, "per_clip": per_clip, "warnings": warns}
