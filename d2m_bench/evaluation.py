"""Evaluation orchestration: pair the files, run the worker pass, call the sections in order.

`evaluate(...)` returns an `EvalResult`; the CLI writes exactly that object. The metric
families live in ``d2m_bench.sections`` (one module each, listed in ``sections.REGISTRY``):
this module knows none of them by name.
"""
from __future__ import annotations

import math
import os
import warnings
from typing import TYPE_CHECKING

from .errors import UserError
from .io.pairing import pair_directories, pair_manifest
from .io.provenance import read_pred_provenance
from .parallel import cap_workers
from .protocol import Protocol, load_protocol
from .results.result import EvalResult
from . import sections
from .sections import EvalContext

if TYPE_CHECKING:  # imported when a dataset is given: the plain path needs none of it
    from .data.dataset import Dataset

__all__ = ["evaluate", "check_sections", "EvalContext"]


def check_sections(protocol: Protocol, ctx: EvalContext) -> list:
    """The enabled section modules, in run order, after each has checked what it needs (weights,
    labels, prompts) so that a run never fails after the audio work; options that name embedders
    are checked whether or not a section uses them."""
    from .sections.embedding import check_trust_remote_code

    check_trust_remote_code(ctx.options or {})
    modules = [sections.section(name) for name in sections.REGISTRY]
    enabled = [mod for mod in modules if sections.is_enabled(mod, protocol)]
    for mod in enabled:
        mod.check(protocol, ctx)
    return enabled


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
        workers: Processes for the worker pass (default: all cores, at most 8).
        cache: Read and write the per-file cache (``$D2M_BENCH_CACHE``).
        progress: Show progress bars on stderr.
        system: System name, recorded in the result and used by the leaderboard.
        data: A built dataset (folder or :class:`~d2m_bench.data.dataset.Dataset`) for the genre and
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
        An :class:`~d2m_bench.results.result.EvalResult`: ``aggregate`` (metric name -> summary with
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
    from .io.lookalike import lookalike_notes

    lookalike = lookalike_notes(pairing.pairs, pred, gt)  # swapped or identical folders: said at once
    if data is not None and not hasattr(data, "segments"):
        from .data.dataset import Dataset

        data = Dataset(data)
    workers, workers_note = cap_workers(workers)  # -j 1000 would start 1000 processes
    ctx = EvalContext(data=data, split=split, options=dict(options or {}), workers=workers, cache=cache,
                      progress=progress, pairs=list(pairing.pairs), provenance=provenance)
    enabled = check_sections(proto, ctx)  # e.g. missing VGGish weights: fail before any audio is decoded
    from .features.worker import run_pairs, usable_cache

    ctx.cache, cache_note = usable_cache(cache)
    notes = list(pairing.notes) + lookalike
    for note in (workers_note, cache_note):
        if note:
            warnings.warn(note)
            notes.append(note)
    steps = [(mod.NAME, mod.pair_step(proto, ctx)) for mod in enabled if hasattr(mod, "pair_step")]
    from .io.cache import default_root

    outputs = run_pairs(ctx.pairs, steps, workers=workers, progress=progress,
                        cache_root=str(default_root()) if ctx.cache else None)
    ctx.pair_data = {name: [out[name] for out in outputs] for name, _ in steps}
    # the rows of the top-level family (the beat metrics) are the result's per-clip rows
    rows = ctx.pair_data.pop(next(mod.NAME for mod in enabled if getattr(mod, "TOP_LEVEL", False)))
    aggregate, excluded, scored = {}, [], {}
    for mod in enabled:
        sec = mod.score(rows, proto, ctx)
        if getattr(mod, "TOP_LEVEL", False):  # the beat metrics: the result's primary numbers
            aggregate.update(sec["aggregate"])
            excluded += sec["excluded"]
            excluded += [{"id": m, "reason": "missing prediction (allowed by --allow-missing)"} for m in pairing.missing]
            continue
        scored[mod.NAME] = sec
        notes += sec.get("warnings", [])
        if sec.get("status") == "ok":
            aggregate.update(sec.get("aggregate", {}))
            excluded += [dict(e, section=mod.NAME) for e in sec.get("excluded", [])]
            for r in rows:
                r.update(sec.get("per_clip", {}).get(r["id"], {}))
    from .results.intervals import add_intervals

    add_intervals(aggregate, rows, proto.section("ci"), excluded)
    for r in rows:
        # Onset/beat times (s) stay in the result, unrounded: the report draws them and their bins.
        for k, v in list(r.items()):
            if isinstance(v, float) and math.isnan(v):
                r[k] = None
    expected = audio.get("expected_seconds", 0.0)
    off_length = [r["id"] for r in rows if expected and abs(r["gt_samples"] / audio["sample_rate"] - expected) > 0.05]
    from .results.gtset import annotate  # gt-set fingerprint and shifted-pairing check (issue 21)

    return annotate(EvalResult(protocol=proto, system=system, pairing_rule=pairing.rule, inputs={
        "pred": None if pred is None else str(pred), "gt": None if gt is None else str(gt),
        "manifest": None if manifest is None else str(manifest),
        "data": None if data is None else str(data.root), "split": split,
        "pred_provenance": provenance},
        aggregate=aggregate, excluded=excluded, per_clip=rows, sections=scored,
        warnings=notes + ([f"{len(off_length)} clip(s) whose gt length differs from the protocol's "
                           f"{expected} s: {', '.join(off_length[:5])}"] if off_length else [])))
