"""Set-level metrics between a background set and an evaluation set, unpaired, any sizes: what
``fadtk <model> background/ eval/`` and ``FrechetAudioDistance.score(bg, ev)`` compute, with
the interval machinery of ``d2m_bench.results.intervals`` and KID / IS beside FD.

The background is a folder or a statistics file (``d2m-bench stats``); the evaluation set is a
folder. Both are embedded through the cached embedders of ``d2m_bench.embedders`` (under
``torchrun`` the files are shared out among the ranks: ``d2m_bench.distributed``).
"""
from __future__ import annotations

import os

from pathlib import Path

import numpy as np

from ..errors import UserError
from .stats import EmbeddingSet, check_match, fingerprint, read_stats


def set_key(emb, layer: str, loading=None) -> dict:
    """What must agree between two sets for their vectors to be comparable (``stats.MATCH``),
    with the leaderboard's comparable key and the audio decoding settings. A loading other than
    d2m-bench's own (``io.loading``) is recorded as ``loading``; d2m-bench's own has none, as
    statistics files written before loading was a parameter."""
    from ..embedders.base import audio_config
    from ..io.loading import is_default, loading_table
    from ..sections.embedding import key

    meta = emb.meta()
    p = loading_table(loading)
    out = {"embedder": emb.name, "layer": layer, "weights_sha256": emb.weights_sha256,
           "pca_sha256": meta.get("pca_sha256"), "sample_rate": emb.sample_rate, "resample": p["resample"],
           "mono": p["mix"], "comparable_key": key(emb, layer, loading) or emb.name, "audio": audio_config()}
    if not is_default(loading):
        out["loading"] = p
    return out


def load_embedder(name: str, layer: str | None, options: dict):
    """(embedder, layer): the run's network for ``name`` and the checked output ``layer``
    (default: the embedder's first output)."""
    from ..embedders.base import EMBEDDERS, embedder_class
    from ..sections.embedding import embedder, resolve

    if name not in EMBEDDERS:
        raise UserError(f"unknown embedder '{name}' (known: {', '.join(EMBEDDERS)})")
    resolve([name], options)
    offered = embedder_class(name).layers
    layer = layer or offered[0]
    if layer not in offered:
        raise UserError(f"--layer {layer} is not an output of {name} ({', '.join(offered)})")
    return embedder(name, options, layer), layer


def embed_folder(folder, emb, layer: str, *, role: str, cache: bool = True, progress: bool = False,
                 loading=None) -> EmbeddingSet:
    """Every audio or video file of ``folder`` (not recursive) embedded at ``layer``."""
    from ..embedders import embed_files
    from ..io.audio import media_digest
    from ..io.cache import FileCache
    from ..io.pairing import list_media
    from ..metrics.fad import gaussian_stats

    files = sorted(list_media(folder, role).values())
    rows = embed_files(files, emb, cache=FileCache(emb.name, enabled=cache), progress=progress, loading=loading)
    per_file = [emb.finalize(emb.select(rows[str(p)], layer)) for p in files]
    logits = [np.asarray(emb.select(rows[str(p)], "logits"), np.float64) for p in files] \
        if "logits" in emb.layers else None
    n = sum(len(v) for v in per_file)
    if n < 2:
        raise UserError(f"{role} set gives {n} {layer} vector(s); a Gaussian needs at least 2", folder)
    mean, cov = gaussian_stats(np.concatenate(per_file))
    return EmbeddingSet(source=str(folder), kind="folder", key=set_key(emb, layer, loading),
                        fingerprint=fingerprint(media_digest(p) for p in files), files=[p.name for p in files],
                        n_files=len(files), per_file=per_file, logits=logits if logits is not None else None,
                        mean=mean, cov=cov, n=n)


def load_set(source, emb, layer: str, *, role: str, cache: bool = True, progress: bool = False,
             loading=None) -> EmbeddingSet:
    """A folder (embedded now) or a statistics file (checked against this embedder and layer)."""
    path = Path(source)
    if path.is_file():
        s = read_stats(path)
        check_match(s, set_key(emb, layer, loading))
        return s
    return embed_folder(path, emb, layer, role=role, cache=cache, progress=progress, loading=loading)


def score_sets(background: str | os.PathLike, evaluation: str | os.PathLike, *, embedder: str = "vggish", layer: str | None = None,
               options: dict | None = None, cache: bool = True, progress: bool = False, ci: dict | None = None,
               kid: dict | None = None, inception: dict | None = None, intervals_max_dim: int = 512,
               loading: dict | None = None) -> dict:
    """FD, FAD-inf, KID, Inception Score and per-file FD of an evaluation folder against a
    background folder or statistics file: ``d2m-bench fad`` as a function.

    Args:
        background: Folder of reference audio, or a statistics file from ``d2m-bench stats``.
        evaluation: Folder of the audio to score.
        embedder: A registered embedder (``d2m_bench.embedders.EMBEDDERS``).
        layer: Its output to compare (default: its first).
        options: ``weights`` (name -> file), ``vggish_weights``, ``trust_remote_code``,
            ``device`` (cpu, cuda, mps, auto), as for ``evaluate``.
        ci: The ``[ci]`` settings (``d2m_bench.results.intervals.DEFAULTS``).
        kid: KID settings (``d2m_bench.metrics.kid.DEFAULTS``: audioldm_eval's).
        inception: ``splits``, ``shuffle``, ``seed`` of the Inception Score (audioldm_eval's 10, True, 2020).
        intervals_max_dim: The FD interval, FAD-inf and per-file FD only up to this dimension.
        loading: How files are read and resampled (``d2m_bench.io.loading``; default d2m-bench's
            own); a statistics file must have been made with the same.

    Returns:
        A JSON-ready dict: ``metrics`` (``fd``, ``fad_inf``, ``kid``, ``inception_score``,
        ``per_file_fd``; each absent one listed in ``skipped`` with the reason), ``per_file``,
        both sets' summaries (fingerprints), the embedder's comparable key, weights hash and device.

    Definitions: FD as ``metrics.fad`` (Kilgour et al. 2019; fadtk's formula), its CI from
    ``intervals.fad_bootstrap_unpaired`` (evaluation files resampled, background fixed); FAD-inf
    as ``intervals.fad_inf`` against the background Gaussian; KID as ``metrics.kid``
    (audioldm_eval; needs the background's vectors: a folder, or a statistics file written with
    embeddings); IS as ``metrics.distributions.inception_score`` of the evaluation set (classifier
    embedders) with a bootstrap CI over evaluation files; per-file FD: each evaluation file's
    vectors against the background Gaussian (fadtk ``score_individual``), embedders with several
    vectors per file only.
    """
    from .. import __version__
    from ..distributed import summary as distributed_summary
    from ..metrics.kid import DEFAULTS as KID_DEFAULTS
    from ..results.intervals import settings as ci_settings
    from ..sections.embedding import meta

    options = dict(options or {})
    emb, layer = load_embedder(embedder, layer, options)
    bg = load_set(background, emb, layer, role="background", cache=cache, progress=progress, loading=loading)
    ev = load_set(evaluation, emb, layer, role="evaluation", cache=cache, progress=progress, loading=loading)
    if ev.kind != "folder":
        raise UserError("the evaluation set must be a folder of audio (a statistics file holds no files to score)",
                        evaluation)
    s = ci_settings(ci)
    k = {**KID_DEFAULTS, **(kid or {})}
    isc = {"splits": 10, "shuffle": True, "seed": 2020, **(inception or {})}
    metrics, skipped = set_metrics(bg, ev, ci=s, kid=k, inception=isc, intervals_max_dim=intervals_max_dim)
    per_file = [{"file": name, "vectors": len(v)} for name, v in zip(ev.files, ev.per_file)]
    for row, value in zip(per_file, metrics.pop("_per_file", [])):
        row["fd"] = value
    key = set_key(emb, layer, loading)
    return {"d2m_bench_version": __version__, "command": "fad", "embedder": emb.name, "layer": layer,
            "comparable_key": key["comparable_key"], "weights_sha256": emb.weights_sha256,
            "device": str(getattr(emb, "device", "cpu")), "embedder_meta": meta(emb, loading), "audio": key["audio"],
            "background": bg.summary(), "eval": ev.summary(), "metrics": metrics, "skipped": skipped,
            "per_file": per_file, "settings": {"ci": s, "kid": k, "inception": isc},
            "distributed": distributed_summary(), "complete": True}


def set_metrics(bg: EmbeddingSet, ev: EmbeddingSet, *, ci: dict, kid: dict, inception: dict,
                only_fd: bool = False, intervals_max_dim: int = 512) -> tuple[dict, dict]:
    """(metrics, skipped): the numbers of ``score_sets`` from two embedded sets (pure but for the
    sets); ``only_fd``: FD, its CI and FAD-inf only (the eval ``[fd]`` section's background).
    The FD interval, FAD-inf and per-file FD are left out above ``intervals_max_dim`` dimensions
    (eval's ``fd.intervals_max_dim``: PANNs' 2048 would take minutes)."""
    from ..metrics.distributions import inception_score
    from ..metrics.fad import frechet_distance, gaussian_stats
    from ..metrics.kid import kernel_inception_distance
    from ..results.intervals import fad_bootstrap_unpaired, fad_inf, mean_ci

    metrics, skipped = {}, {}
    dim = int(ev.mean.shape[0])
    if bg.mean.shape[0] != dim:
        raise UserError(f"background vectors have {bg.mean.shape[0]} dimensions, evaluation vectors {dim}", bg.source)
    fd = {"value": frechet_distance(ev.mean, ev.cov, bg.mean, bg.cov), "unit": "score", "higher_is_better": False,
          "dim": dim, "eval_vectors": ev.n, "background_vectors": bg.n,
          "definition": "Frechet distance between Gaussians fitted to the evaluation and the background vectors "
                        "(float64, eigendecomposition; fadtk / frechet-audio-distance formula)"}
    metrics["fd"] = fd
    if dim > intervals_max_dim:  # each replicate is an eigendecomposition of a dim x dim matrix
        fd["intervals_note"] = f"no bootstrap CI or FAD-inf: dimension {dim} > intervals_max_dim = {intervals_max_dim}"
        skipped["fad_inf"] = fd["intervals_note"]
    else:
        boot = fad_bootstrap_unpaired(ev.per_file, bg.mean, bg.cov, level=ci["level"],
                                      n_resamples=ci["fad_resamples"], seed=ci["seed"])
        if boot is not None:
            fd["ci"] = boot
        inf = fad_inf(np.concatenate(ev.per_file), reference=(bg.mean, bg.cov), steps=ci["fad_inf_steps"],
                      min_fraction=ci["fad_inf_min_fraction"], seed=ci["seed"])
        if inf is None:
            skipped["fad_inf"] = "fewer than 2 distinct subset sizes of at least 2 evaluation vectors"
        else:
            inf["ci_note"] = "no bootstrap CI: r2 and the per-size FD values show the fit"
            metrics["fad_inf"] = inf
    if only_fd:
        return metrics, skipped
    if bg.per_file is None:
        skipped["kid"] = "the background statistics file holds no embeddings (d2m-bench stats --embeddings)"
    elif min(bg.n, ev.n) < 2:
        skipped["kid"] = "fewer than 2 vectors on a side"
    else:
        out = kernel_inception_distance(ev.vectors, bg.vectors, **kid)
        metrics["kid"] = {**out, "unit": "score", "higher_is_better": False, "settings": dict(kid),
                          "ci_note": "std over subsets as audioldm_eval reports it; no bootstrap CI",
                          "definition": "unbiased polynomial-kernel MMD^2 over random subsets, mean and std over "
                                        "subsets (audioldm_eval calculate_kid)"}
    if ev.logits is None:
        skipped["inception_score"] = "the embedder has no label logits"
    elif ev.n_files < inception["splits"]:
        skipped["inception_score"] = f"{ev.n_files} evaluation file(s), fewer than splits = {inception['splits']}"
    else:
        logits = np.concatenate([v.mean(axis=0, keepdims=True) for v in ev.logits])
        mean, std = inception_score(logits, **inception)
        metrics["inception_score"] = {"value": mean, "std_over_splits": std, "unit": "score",
                                      "higher_is_better": True, "n": ev.n_files, **inception,
                                      "ci": _inception_ci(logits, inception, ci),
                                      "definition": "Inception Score of the evaluation files' softmax label "
                                                    "distributions (audioldm_eval calculate_isc)"}
    per_file = [frechet_distance(*gaussian_stats(v), bg.mean, bg.cov) if len(v) >= 2 else None
                for v in ev.per_file] if dim <= intervals_max_dim else []
    values = [v for v in per_file if v is not None]
    if values:
        metrics["per_file_fd"] = {"value": float(np.mean(values)), "n": len(values), "unit": "score",
                                  "higher_is_better": False,
                                  "ci": mean_ci(values, level=ci["level"], n_resamples=ci["n_resamples"], seed=ci["seed"]),
                                  "definition": "mean over evaluation files of the FD between the file's vectors "
                                                "and the background Gaussian (fadtk score_individual)"}
        metrics["_per_file"] = per_file
    else:
        skipped["per_file_fd"] = ("no evaluation file has 2 or more vectors (one vector per file)" if per_file or
                                  dim <= intervals_max_dim else f"dimension {dim} > intervals_max_dim = {intervals_max_dim}")
    return metrics, skipped


def _inception_ci(logits, inception: dict, ci: dict) -> dict | None:
    """Bootstrap CI of the Inception Score over evaluation files (None when a resample is too small)."""
    from ..metrics.distributions import inception_score
    from ..results.intervals import interval, resample_indices

    n = len(logits)
    if n - 1 < inception["splits"]:
        return None
    reps = [inception_score(logits[idx], **inception)[0] for idx in resample_indices(n, ci["fad_resamples"], ci["seed"])]
    jack = [inception_score(np.delete(logits, i, axis=0), **inception)[0] for i in range(n)]
    theta = inception_score(logits, **inception)[0]
    return interval(reps, theta, jack, level=ci["level"], n_resamples=ci["fad_resamples"], seed=ci["seed"],
                    unit="evaluation file")


def table(result: dict) -> str:
    """The lines ``d2m-bench fad`` prints."""
    lines = [f"{result['embedder']} ({result['layer']}; {result['comparable_key']}; {result['device']})",
             f"background {result['background']['source']}: {result['background']['files']} files, "
             f"{result['background']['vectors']} vectors, fingerprint {result['background']['fingerprint'][:12]}",
             f"eval       {result['eval']['source']}: {result['eval']['files']} files, "
             f"{result['eval']['vectors']} vectors, fingerprint {result['eval']['fingerprint'][:12]}"]
    for name, m in result["metrics"].items():
        ci = m.get("ci") or {}
        bounds = ci.get("bca") or ci.get("percentile")
        extra = f"  [{bounds[0]:.4f}, {bounds[1]:.4f}] {ci['level']:.0%} CI" if bounds else ""
        if "std" in m:
            extra += f"  (std {m['std']:.4f} over {m['subsets']} subsets of {m['subset_size']})"
        lines.append(f"{name:16s} {m['value']:.4f}{extra}")
    lines += [f"{name:16s} skipped: {why}" for name, why in result["skipped"].items()]
    return "\n".join(lines)
