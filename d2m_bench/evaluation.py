"""Evaluation orchestration: pair files, detect events in parallel, score, aggregate.

`evaluate(...)` returns an `EvalResult`; the CLI writes exactly that object.
"""
from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING

from .cache import FileCache, default_root
from .errors import UserError
from .events import detector_config, file_events
from .lengths import policy_reason
from .metrics import beats as bm
from .pairing import pair_directories, pair_manifest
from .parallel import cap_workers
from .protocol import Protocol, load_protocol
from .provenance import model_warnings, read_pred_provenance
from .results import EvalResult, metric_summary

if TYPE_CHECKING:  # imported when a dataset is given: the plain path needs none of it
    from .dataset import Dataset

# Extra metric families, run when the protocol's table of that name has enabled = true.
SECTIONS = {
    "genre": "d2m_bench.genre.section:genre_section",
    "alignment": "d2m_bench.alignment.section:alignment_section",
    "fd": "d2m_bench.audio_sections:fd_section",
    "kl": "d2m_bench.audio_sections:kl_section",
    "inception": "d2m_bench.audio_sections:inception_section",
    "clap": "d2m_bench.clap_section:clap_section",
}


@dataclass
class EvalContext:
    data: object = None  # d2m_bench.dataset.Dataset or None
    split: str = "test"
    options: dict = field(default_factory=dict)
    workers: int = 1
    cache: bool = True
    progress: bool = False


_CACHES = {}  # one FileCache per process and root: a write failure switches it off once


def _events_cache(root, enabled):
    if not enabled:
        return None
    if root not in _CACHES:
        _CACHES[root] = FileCache("events", root)
    return _CACHES[root]


def _pair_events(job):
    """Worker: events of one gt/pred pair, as loaded or under the protocol's length policy.

    The policy acts only where `lengths.policy_reason` says so (for ``d2m`` and ``loris``:
    where the published script would stop). Per-clip rows record, for gt and pred, the file's
    own sample rate, channel count and frame count (before resampling, without codec padding),
    whether it was resampled or mixed down, the length at the protocol rate before any policy
    (``*_loaded_samples``) and the length scored (``*_samples``).
    """
    pair, audio, detector, variant, width, cache_on, cache_root = job
    cache = _events_cache(cache_root, cache_on)
    policy = audio.get("length_policy", "pred_to_gt")
    gt_n, gt_loaded, gt_t, _, gt_cached, gt_info = file_events(pair.gt, audio=audio, detector=detector, cache=cache)
    pred_n, pred_loaded, pred_t, action, pred_cached, pred_info = file_events(
        pair.pred, audio=audio, detector=detector, cache=cache)
    reason = policy_reason(variant, gt_n, pred_n, audio["sample_rate"], width)
    if reason and policy == "pred_to_gt":
        pred_n, _, pred_t, action, _, _ = file_events(pair.pred, audio=audio, detector=detector, target_len=gt_n,
                                                      cache=cache)
    elif reason and policy == "min":
        m = min(gt_n, pred_n)
        if gt_n > m:
            gt_n, _, gt_t, _, _, _ = file_events(pair.gt, audio=audio, detector=detector, target_len=m, cache=cache)
        else:
            pred_n, _, pred_t, _, _, _ = file_events(pair.pred, audio=audio, detector=detector, target_len=m, cache=cache)
        action = f"both trimmed to {m}"
    return {"id": pair.id, "gt": str(pair.gt), "pred": str(pair.pred), "gt_samples": gt_n,
            "pred_samples": pred_n, "gt_loaded_samples": gt_loaded, "pred_loaded_samples": pred_loaded,
            "length_action": action, "length_reason": reason,
            **gt_info.as_row("gt"), **pred_info.as_row("pred"),
            "gt_events": gt_t.tolist(), "pred_events": pred_t.tolist(),
            "cached": bool(gt_cached and pred_cached)}


def _warm_up(audio, detector):
    """Compile librosa's numba kernels once in the parent so forked workers inherit them."""
    import numpy as np

    from .events import detect

    detect(np.random.default_rng(0).normal(size=audio["sample_rate"]).astype("float32"), audio["sample_rate"], detector)


def _single_threaded_blas():
    """Parallelism is across processes: a multi-threaded BLAS on a 128x1025 by 1025x87 product
    only adds contention (it halved throughput on 2 cores). Onset times are unchanged (tested)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _usable_cache(cache: bool):
    """(cache on?, warning or None): an unwritable cache directory is warned about once and
    the run goes on without the cache, instead of failing in every worker."""
    if not cache:
        return False, None
    problem = FileCache("events", default_root()).check_writable()
    if problem:
        return False, f"cache directory not writable, running without the cache: {problem}"
    return True, None


def _run_pairs(pairs, audio, detector, *, workers, cache, progress, beats=None):
    from threadpoolctl import threadpool_limits
    from .progress import progress_bar

    cache_root = str(default_root())
    _CACHES.clear()  # forked workers inherit this process's caches: start them enabled
    beats = beats or {}
    variant, width = beats.get("variant", "d2m"), beats.get("bin_seconds", 1.0)
    jobs = [(p, audio, detector, variant, width, cache, cache_root) for p in pairs]
    bar = dict(total=len(jobs), desc="events", unit="pair", disable=not progress, leave=False)
    _warm_up(audio, detector)
    if workers <= 1 or len(jobs) < 4:
        with threadpool_limits(1):
            return [_pair_events(j) for j in progress_bar(jobs, **bar)]
    import multiprocessing as mp

    chunk = max(1, min(32, len(jobs) // (workers * 4)))
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("fork"),
                             initializer=_single_threaded_blas) as pool:
        return list(progress_bar(pool.map(_pair_events, jobs, chunksize=chunk), **bar))


def _score_beats(rows, protocol):
    """Per-clip metrics for the protocol's variant; returns (aggregate, excluded)."""
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
    return _aggregate(variant, beats, kept), excluded


def _aggregate(variant, beats, rows):
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
        prefix = beats.get("events", "onset")
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


def _run_section(name, pairs, protocol, ctx):
    module, func = SECTIONS[name].split(":")
    try:
        fn = getattr(import_module(module), func)
    except ImportError as exc:
        return {"status": "skipped", "reason": f"section '{name}' is not available ({exc})"}
    return fn(pairs, protocol, ctx)


def evaluate(pred: str | os.PathLike | None = None, gt: str | os.PathLike | None = None, *,
             protocol: str | os.PathLike | Protocol = "d2m-aistpp-2s", manifest: str | os.PathLike | None = None,
             allow_missing: bool = False, workers: int | None = None, cache: bool = True, progress: bool = False,
             system: str | None = None, data: str | os.PathLike | Dataset | None = None, split: str = "test",
             options: dict | None = None, overrides: dict | None = None) -> EvalResult:
    """Score generated music against ground truth under a protocol: ``d2m-bench eval`` as a function.

    The CLI calls this and writes the returned object, so the numbers are the same.

    Args:
        pred: Folder of generated clips (paired with ``gt`` by the protocol's pairing rule).
        gt: Folder of ground-truth clips.
        protocol: A protocol name (``d2m-bench protocols``), a path to a TOML file, or a
            :class:`~d2m_bench.protocol.Protocol` from :func:`~d2m_bench.protocol.load_protocol`.
        manifest: CSV with columns ``id,gt,pred`` instead of ``pred``/``gt`` folders.
        allow_missing: Score the gt ids that have a prediction and list the others as excluded
            (otherwise a missing prediction is an error).
        workers: Processes for onset detection (default: all cores, at most 8).
        cache: Read and write the per-file cache (``$D2M_BENCH_CACHE``).
        progress: Show progress bars on stderr.
        system: System name, recorded in the result and used by the leaderboard.
        data: A built dataset (folder or :class:`~d2m_bench.dataset.Dataset`) for the genre and
            alignment sections (genre labels and database, motion).
        split: Split of ``data`` the clips belong to.
        options: Files for the optional sections: ``vggish_weights``, ``genre_db``, ``labels``,
            ``motion``, ``prompts``, ``embedder`` (the CLI options of the same names); ``weights``: embedder
            name -> weights file (``--weights NAME=PATH``); ``trust_remote_code``: embedder names
            whose weights folder may run the model code it ships (``--trust-remote-code NAME``,
            MERT; refused otherwise).
        overrides: Dotted protocol keys to new values, e.g. ``{"beats.onset.delta": 0.1}``: a
            derived protocol whose name records them and whose hash differs.

    Returns:
        An :class:`~d2m_bench.results.EvalResult`: ``aggregate`` (metric name -> summary with
        ``value``), ``per_clip`` rows, ``excluded`` clips with reasons, ``warnings``;
        ``write_json`` / ``write_csv`` / ``table`` give what ``d2m-bench eval`` writes and prints.

    Raises:
        d2m_bench.errors.UserError: bad input (missing or unreadable files, unknown protocol, ...),
            with a one-line message naming the file.

    Examples:
        >>> import d2m_bench
        >>> result = d2m_bench.evaluate("demo/generated", "demo/gt")  # doctest: +SKIP
        >>> round(result.aggregate["beats_coverage"]["value"], 3)  # doctest: +SKIP
        0.958
    """
    proto = load_protocol(protocol).with_overrides(overrides or {}).validate_eval()
    audio = proto.section("audio")
    if manifest is not None:
        pairing = pair_manifest(manifest, allow_missing=allow_missing)
    else:
        if pred is None or gt is None:
            raise UserError("give --pred and --gt folders, or --manifest")
        pairing = pair_directories(gt, pred, rule=proto.get("pairing.rule", "auto"), allow_missing=allow_missing)
    provenance = read_pred_provenance(pred)  # early: a broken provenance.json stops the run before scoring
    if data is not None and not hasattr(data, "segments"):
        from .dataset import Dataset

        data = Dataset(data)
    if proto.section("genre").get("enabled"):  # e.g. missing VGGish weights: fail before the beat metrics run
        from .genre.section import check_ready

        check_ready(pairing.pairs, proto, data=data, options=options)
    from .audio_sections import check_ready as audio_ready  # missing backend library or weights

    audio_ready(proto, options)
    workers, workers_note = cap_workers(workers)  # -j 1000 would start 1000 processes
    detector = detector_config(proto.section("beats"))  # validated above
    notes = list(pairing.notes)
    if workers_note:
        warnings.warn(workers_note)
        notes.append(workers_note)
    cache, cache_note = _usable_cache(cache)
    if cache_note:
        warnings.warn(cache_note)
        notes.append(cache_note)
    rows = _run_pairs(pairing.pairs, audio, detector, workers=workers, cache=cache, progress=progress,
                      beats=proto.section("beats"))
    aggregate, excluded = _score_beats(rows, proto)
    excluded += [{"id": m, "reason": "missing prediction (allowed by --allow-missing)"} for m in pairing.missing]
    expected = audio.get("expected_seconds", 0.0)
    off_length = [r["id"] for r in rows if expected and abs(r["gt_samples"] / audio["sample_rate"] - expected) > 0.05]
    ctx = EvalContext(data=data, split=split, options=dict(options or {}), workers=workers, cache=cache, progress=progress)
    sections = {}
    for name in SECTIONS:
        if proto.section(name).get("enabled"):
            sec = _run_section(name, pairing.pairs, proto, ctx)
            sections[name] = sec
            if sec.get("status") == "ok":
                aggregate.update(sec.get("aggregate", {}))
                excluded += [dict(e, section=name) for e in sec.get("excluded", [])]
                for r in rows:
                    r.update(sec.get("per_clip", {}).get(r["id"], {}))
    from .sanity import sanity_section  # levels, silence, sameness of the predictions: warnings only

    sections["sanity"] = sanity_section(pairing.pairs, progress=progress)
    sections["sanity"].setdefault("warnings", []).extend(model_warnings(provenance))
    notes += sections["sanity"].get("warnings", [])
    for r in rows:
        r.update(sections["sanity"].get("per_clip", {}).get(r["id"], {}))
    from .intervals import add_intervals

    add_intervals(aggregate, rows, proto.section("ci"), excluded)
    for r in rows:
        # Onset/beat times (s) stay in the result, unrounded: the report draws them and their bins.
        for k, v in list(r.items()):
            if isinstance(v, float) and math.isnan(v):
                r[k] = None
    return EvalResult(protocol=proto, system=system, pairing_rule=pairing.rule, inputs={
        "pred": None if pred is None else str(pred), "gt": None if gt is None else str(gt),
        "manifest": None if manifest is None else str(manifest),
        "data": None if data is None else str(data.root), "split": split,
        "pred_provenance": provenance},
        aggregate=aggregate, excluded=excluded, per_clip=rows, sections=sections,
        warnings=notes + ([f"{len(off_length)} clip(s) whose gt length differs from the protocol's "
                           f"{expected} s: {', '.join(off_length[:5])}"] if off_length else []))
