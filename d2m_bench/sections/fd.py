"""The ``[fd]`` section: Frechet distance between Gaussians fitted to the generated and the
ground-truth embeddings, one metric ``fd_<embedder>`` per entry of ``embedders`` (layer per
embedder in ``[fd.layers]``, default: the embedder's first output), with the bootstrap CI and
FAD-inf of ``d2m_bench.results.intervals`` where the dimension is at most ``intervals_max_dim``
(each replicate is an eigendecomposition of a dim x dim matrix).
"""
from __future__ import annotations

from . import Section, params, validate_table
from .embedding import (check_embedders, embed_layer, key, meta, scored, side_vectors, slug, validate_embedders,
                        validate_loading)

NAME = "fd"
DEFAULTS = {"embedders": ["vggish"], "layers": {}, "intervals_max_dim": 512, "background": "", "loading": {}}


def validate(check, table) -> None:
    if not validate_table(check, NAME, table, DEFAULTS):
        return
    p = {**DEFAULTS, **table}
    validate_embedders(check, NAME, p)
    validate_loading(check, NAME, p)
    check.number("fd.intervals_max_dim", p["intervals_max_dim"], integer=True, strict=False)


def check(protocol, ctx) -> None:
    """Weights of every embedder found, each ``[fd.layers]`` entry an output of its embedder, the background there."""
    check_embedders(protocol, ctx, NAME, DEFAULTS)


def score(rows, protocol, ctx) -> Section:
    """FD of each embedder of ``embedders`` between the generated and the gt clips."""
    import numpy as np

    from ..metrics import fad as fadm
    from ..results.intervals import fad_extras

    p = params(protocol, NAME, DEFAULTS)
    pairs, excluded = scored(ctx.pairs)
    aggregate, metas, keys = {}, {}, {}
    for name in p["embedders"]:
        emb, vectors, layer = embed_layer(NAME, name, pairs, ctx, p["layers"], protocol.source or protocol.name,
                                          p["loading"])
        pred, gt = (side_vectors(emb, vectors, pairs, side, layer) for side in ("pred", "gt"))
        if p["background"]:
            aggregate.update(_against_background(name, emb, layer, pred, p, protocol, ctx, metas, keys))
            continue
        x, y = np.concatenate(pred), np.concatenate(gt)
        metric = f"fd_{slug(name)}"
        metas[name] = {**meta(emb, p["loading"]), "layer": layer, "pred_vectors": len(x), "gt_vectors": len(y)}
        if min(len(x), len(y)) < 2:
            metas[name]["skipped"] = "fewer than 2 embedding vectors on a side"
            continue
        aggregate[metric] = {
            "value": fadm.frechet_audio_distance(x, y), "n": len(pairs), "unit": "score", "higher_is_better": False,
            "embedder": name, "layer": layer, "weights_sha256": emb.weights_sha256,
            "pred_vectors": len(x), "gt_vectors": len(y), "dim": int(x.shape[1]),
            "definition": f"Frechet distance between Gaussians fitted to the {name} vectors ({layer}; "
                          f"{'one per clip' if emb.hop is None else f'one per {emb.hop:g} s'}) of the generated "
                          "and of the ground-truth clips (float64, eigendecomposition)"}
        if x.shape[1] <= p["intervals_max_dim"]:
            aggregate[metric].update(fad_extras(pred, gt, protocol.section("ci")))
        else:
            aggregate[metric]["intervals_note"] = (f"no bootstrap CI or FD-inf: dimension {x.shape[1]} > "
                                                   f"fd.intervals_max_dim = {p['intervals_max_dim']}")
        keys[metric] = key(emb, layer, p["loading"])
    return {"status": "ok", "meta": {"embedders": metas}, "aggregate": aggregate, "per_clip": {},
            "excluded": excluded, "comparable_keys": {k: v for k, v in keys.items() if v}}


def _against_background(name, emb, layer, pred, p, protocol, ctx, metas, keys) -> dict:
    """``fd_<embedder>`` of the generated clips against ``fd.background`` (a folder or statistics
    file) instead of their gt: unpaired, with the unpaired bootstrap and FAD-inf of ``sets``."""
    import numpy as np

    from ..results.intervals import settings
    from ..sets.score import load_set, set_metrics
    from ..sets.stats import EmbeddingSet
    from ..metrics.fad import gaussian_stats

    bg = load_set(p["background"], emb, layer, role="background", cache=ctx.cache, progress=ctx.progress,
                  loading=p["loading"])
    x = np.concatenate(pred)
    metas[name] = {**meta(emb, p["loading"]), "layer": layer, "pred_vectors": len(x), "background": bg.summary()}
    if len(x) < 2:
        metas[name]["skipped"] = "fewer than 2 generated embedding vectors"
        return {}
    mean, cov = gaussian_stats(x)
    ev = EmbeddingSet(source="pred", kind="folder", key=bg.key, fingerprint="", per_file=pred, mean=mean, cov=cov,
                      n=len(x), n_files=len(pred))
    s = settings(protocol.section("ci"))
    metrics, _ = set_metrics(bg, ev, ci=s, kid=None, inception=None, only_fd=True,
                             intervals_max_dim=p["intervals_max_dim"])
    fd = metrics["fd"]
    metric = f"fd_{slug(name)}"
    keys[metric] = key(emb, layer, p["loading"])
    out = {"value": fd["value"], "n": len(pred), "unit": "score", "higher_is_better": False, "embedder": name,
           "layer": layer, "weights_sha256": emb.weights_sha256, "pred_vectors": len(x),
           "background_vectors": bg.n, "dim": fd["dim"], "background": bg.summary(),
           "definition": f"Frechet distance between Gaussians fitted to the {name} vectors ({layer}) of the generated "
                         "clips and of the background set (unpaired; float64, eigendecomposition)"}
    out.update({k: fd[k] for k in ("ci", "intervals_note") if k in fd})
    if "fad_inf" in metrics:
        out["fad_inf"] = metrics["fad_inf"]
    return {metric: out}
