"""The ``[beats]`` section: Beats Coverage / Hit (``d2m``, ``loris``) or tolerance-window
precision / recall / F-measure (``tolerance``) of onset or beat events.

Per pair, in the worker pass: events of gt and prediction as loaded, or under the protocol's
length policy where ``d2m_bench.io.lengths`` says it acts (``run_pair``). Then per clip the
variant's scores and their aggregate over clips (``score``): ``metrics.beats`` has the formulas.
Its metrics are the result's primary numbers: they sit at the top of ``aggregate`` and its
exclusions carry no section tag (the result layout predates sections), so it has no entry in
the result's ``sections``.
"""
from __future__ import annotations

import warnings

from ..errors import UserError
from ..features.worker import cache_for
from . import Section

NAME = "beats"
TOP_LEVEL = True  # see the module docstring
VARIANTS = ("d2m", "loris", "tolerance")
DETECTORS = ("onset", "beat")
DEFAULTS = {"variant": "d2m", "bin_seconds": 1.0, "window": 0.07, "events": "onset"}


def enabled(protocol) -> bool:
    return True


def validate(check, table) -> None:
    from ..features.events import BEAT_KEYS, ONSET_KEYS, OPTIONAL_ONSET_KEYS
    from ..metrics.beats import PAD_MODES
    from ..protocol import MAX_CLIP_SECONDS, is_int

    beats = table
    check.keys("beats", beats, ("variant", "bin_seconds", "window", "events", "onset", "beat_track", "detector",
                                "madmom"), required=("variant",))
    variant = beats["variant"]
    check.choice("beats.variant", variant, VARIANTS)
    if beats.get("detector", "librosa") != "librosa" or "madmom" in beats:  # a trained tracker: its own module
        from ..features.madmom_events import validate as validate_detector

        return validate_detector(check, beats)
    if variant == "tolerance":
        check.number("beats.window", beats.get("window", 0.07), maximum=60)
        check.choice("beats.events", beats.get("events", "onset"), DETECTORS)
        if "bin_seconds" in beats:
            check.fail("beats.bin_seconds applies to variants d2m and loris, not tolerance")
    else:
        hop, sr = check.p.get("beats.onset.hop_length"), check.p.get("audio.sample_rate")
        # A bin shorter than one onset frame holds nothing more, and 1e-300 s would ask for 1e300 bins.
        frame = hop / sr if is_int(hop) and is_int(sr) and hop > 0 and sr > 0 else 0
        check.number("beats.bin_seconds", beats.get("bin_seconds", 1.0), maximum=MAX_CLIP_SECONDS)
        if beats.get("bin_seconds", 1.0) < frame:
            check.fail(f"beats.bin_seconds = {beats.get('bin_seconds', 1.0)!r} is shorter than one onset frame "
                       f"(hop_length / sample_rate = {frame:.4g} s)")
        for key in ("window", "events"):
            if key in beats:
                check.fail(f"beats.{key} applies to variant tolerance only, not {variant}")
    detector = beats.get("events", "onset") if variant == "tolerance" else "onset"
    if detector == "onset":
        onset = check.table("beats.onset")
        check.keys("beats.onset", onset, ONSET_KEYS + OPTIONAL_ONSET_KEYS, required=ONSET_KEYS)
        if "pad_mode" in onset:
            check.choice("beats.onset.pad_mode", onset["pad_mode"], PAD_MODES)
        check.number("beats.onset.hop_length", onset["hop_length"], integer=True, maximum=65536)
        for key in ("pre_max", "pre_avg", "wait"):
            check.number(f"beats.onset.{key}", onset[key], integer=True, strict=False)
        for key in ("post_max", "post_avg"):
            check.number(f"beats.onset.{key}", onset[key], integer=True)
        check.number("beats.onset.delta", onset["delta"], strict=False)
        for key in ("backtrack", "normalize"):
            check.boolean(f"beats.onset.{key}", onset[key])
    else:
        track = check.table("beats.beat_track")
        check.keys("beats.beat_track", track, BEAT_KEYS, required=BEAT_KEYS)
        check.number("beats.beat_track.hop_length", track["hop_length"], integer=True, maximum=65536)
        check.number("beats.beat_track.tightness", track["tightness"])
        check.boolean("beats.beat_track.trim", track["trim"])


def check(protocol, ctx) -> None:
    """Nothing to fetch: the detector is librosa's and the table was validated."""


def pair_step(protocol, ctx) -> dict:
    from ..features.events import detector_config
    from ..io.cache import default_root

    beats = protocol.section("beats")
    return {"audio": protocol.section("audio"), "detector": detector_config(beats),
            "variant": beats.get("variant", "d2m"), "width": beats.get("bin_seconds", 1.0),
            "cache": ctx.cache, "cache_root": str(default_root())}


def warm_up(config) -> None:
    """Compile librosa's numba kernels once in the parent so forked workers inherit them."""
    import numpy as np

    from ..features.events import detect

    sr = config["audio"]["sample_rate"]
    detect(np.random.default_rng(0).normal(size=sr).astype("float32"), sr, config["detector"])


def run_pair(pair, files, config) -> dict:
    """Events of one gt/pred pair, as loaded or under the protocol's length policy.

    The policy acts only where `lengths.policy_reason` says so (for ``d2m`` and ``loris``:
    where the published script would stop). Per-clip rows record, for gt and pred, the file's
    own sample rate, channel count and frame count (before resampling, without codec padding),
    whether it was resampled or mixed down, the length at the protocol rate before any policy
    (``*_loaded_samples``) and the length scored (``*_samples``).
    """
    from ..features.events import file_events
    from ..io.lengths import policy_reason

    audio, detector = config["audio"], config["detector"]
    cache = cache_for("events", config["cache_root"], config["cache"])
    policy = audio.get("length_policy", "pred_to_gt")
    gt, pred = files["gt"], files["pred"]

    def events(source, target_len=None):
        return file_events(source.path, audio=audio, detector=detector, target_len=target_len, cache=cache,
                           source=source)

    gt_n, gt_loaded, gt_t, _, gt_cached, gt_info = events(gt)
    pred_n, pred_loaded, pred_t, action, pred_cached, pred_info = events(pred)
    reason = policy_reason(config["variant"], gt_n, pred_n, audio["sample_rate"], config["width"])
    if reason and policy == "pred_to_gt":
        pred_n, _, pred_t, action, _, _ = events(pred, gt_n)
    elif reason and policy == "min":
        m = min(gt_n, pred_n)
        if gt_n > m:
            gt_n, _, gt_t, _, _, _ = events(gt, m)
        else:
            pred_n, _, pred_t, _, _, _ = events(pred, m)
        action = f"both trimmed to {m}"
    return {"id": pair.id, "gt": str(pair.gt), "pred": str(pair.pred), "gt_samples": gt_n,
            "pred_samples": pred_n, "gt_loaded_samples": gt_loaded, "pred_loaded_samples": pred_loaded,
            "length_action": action, "length_reason": reason,
            **gt_info.as_row("gt"), **pred_info.as_row("pred"),
            "gt_events": gt_t.tolist(), "pred_events": pred_t.tolist(),
            "cached": bool(gt_cached and pred_cached)}  # gt_sha256 (the gt set's fingerprint) comes with gt_info


def score(rows, protocol, ctx) -> Section:
    """Per-clip metrics of the protocol's variant (written into ``rows``) and their aggregate."""
    from ..metrics import beats as bm

    beats = protocol.section("beats")
    audio = protocol.section("audio")
    variant = beats.get("variant", "d2m")
    sr = audio["sample_rate"]
    width = beats.get("bin_seconds", 1.0)
    excluded = []
    for r in rows:
        if variant == "tolerance":
            r.update(bm.tolerance_scores(r["gt_events"], r["pred_events"], window=beats.get("window", 0.07)))
            if r["ref_events"] == 0:
                excluded.append({"id": r["id"], "reason": "gt has no detected event (recall undefined)"})
            continue
        gt_bins = bm.event_bins(r["gt_events"], bm.n_bins(r["gt_samples"], sr, width), width)
        pred_bins = bm.event_bins(r["pred_events"], bm.n_bins(r["pred_samples"], sr, width), width)
        if variant == "d2m":
            if len(gt_bins) != len(pred_bins):
                raise UserError(f"{len(pred_bins)} one-second bins vs {len(gt_bins)} in the gt "
                                f"(length policy '{audio.get('length_policy')}' forbids it)", r["pred"])
            r.update(bm.coverage_hit_d2m(gt_bins, pred_bins))
            if r["gt_bins"] == 0:
                excluded.append({"id": r["id"], "reason": "gt has no onset (Beats Coverage/Hit undefined)"})
        elif variant == "loris":
            if len(pred_bins) > len(gt_bins):
                if audio.get("length_policy") == "strict":
                    raise UserError(f"{len(pred_bins)} one-second bins vs {len(gt_bins)} in the gt "
                                    "(length policy 'strict', as LORIS's assert)", r["pred"])
                r["length_action"] = f"pred bins truncated {len(pred_bins)}->{len(gt_bins)}"
            r.update(bm.coverage_hit_loris(gt_bins, pred_bins))
        else:
            raise UserError(f"unknown beats variant '{variant}' (d2m, loris, tolerance)", protocol.source)
    skip = {e["id"] for e in excluded}
    kept = [r for r in rows if r["id"] not in skip]
    if excluded:
        warnings.warn(f"{len(excluded)} clip(s) excluded from the beat metrics: "
                      + ", ".join(e["id"] for e in excluded[:5]) + (" ..." if len(excluded) > 5 else ""))
    return {"status": "ok", "aggregate": _aggregate(variant, beats, kept), "per_clip": {}, "excluded": excluded}


def _aggregate(variant, beats, rows):
    from ..metrics import beats as bm
    from ..results.result import metric_summary

    agg = {}
    if not rows:
        return agg
    if variant == "d2m":
        bt = sum(r["gt_bins"] for r in rows)
        agg["beats_coverage"] = metric_summary([r["beats_coverage"] for r in rows], unit="ratio",
                                               pooled=sum(r["pred_bins"] for r in rows) / bt,
                                               capped_mean=sum(min(r["beats_coverage"], 1.0) for r in rows) / len(rows),
                                               definition="B_g / B_t per clip (a ratio: above 1 when the prediction "
                                                          "fills more 1-s bins than the gt), mean over clips; "
                                                          "papers print it x100 as a percentage")
        agg["beats_hit"] = metric_summary([r["beats_hit"] for r in rows], pooled=sum(r["hit_bins"] for r in rows) / bt)
    elif variant == "loris":
        agg["loris_coverage"] = metric_summary([r["loris_coverage"] for r in rows])
        agg["loris_hit"] = metric_summary([r["loris_hit"] for r in rows])
        agg["loris_f1"] = {"value": bm.harmonic_mean(agg["loris_coverage"]["value"], agg["loris_hit"]["value"]),
                           "n": len(rows), "unit": "fraction", "higher_is_better": True,
                           "definition": "harmonic mean of the dataset means of loris_coverage and loris_hit"}
    else:
        detector = beats.get("detector", "librosa")  # a trained tracker names its metrics: madmom_dbn_beat_*
        prefix = beats.get("events", "onset") if detector == "librosa" else detector.replace("-", "_")
        n_ref = sum(r["ref_events"] for r in rows)
        n_est = sum(r["est_events"] for r in rows)
        m = sum(r["matched"] for r in rows)
        p_pool = m / n_est if n_est else 0.0
        r_pool = m / n_ref
        agg[f"{prefix}_precision"] = metric_summary([r["precision"] for r in rows], pooled=p_pool)
        agg[f"{prefix}_recall"] = metric_summary([r["recall"] for r in rows], pooled=r_pool)
        agg[f"{prefix}_f_measure"] = metric_summary([r["f_measure"] for r in rows],
                                                    pooled=bm.harmonic_mean(p_pool, r_pool))
    return agg
