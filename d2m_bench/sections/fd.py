"""The ``[fd]`` section: Frechet distance between Gaussians fitted to the generated and the
ground-truth embeddings, one metric ``fd_<embedder>`` per entry of ``embedders`` (layer per
embedder in ``[fd.layers]``, default: the embedder's first output), with the bootstrap CI and
FAD-inf of ``d2m_bench.results.intervals`` where the dimension is at most ``intervals_max_dim``
(each replicate is an eigendecomposition of a dim x dim matrix).
"""
from __future__ import annotations

from ..errors import UserError
from . import Section, params, table_enabled
from .embedding import embed, resolve, scored, slug

NAME = "fd"
DEFAULTS = {"embedders": ["vggish"], "layers": {}, "intervals_max_dim": 512}


def enabled(protocol) -> bool:
    return table_enabled(protocol, NAME)


def validate(check, table) -> None:
    if not table:  # absent: the defaults, valid by construction (and no embedder module imported)
        return
    from ..embedders.base import EMBEDDERS

    check.keys(NAME, table, ("enabled", *DEFAULTS))
    if "enabled" in table:
        check.boolean("fd.enabled", table["enabled"])
    p = {**DEFAULTS, **table}
    if not isinstance(p["embedders"], list) or not p["embedders"]:
        check.fail("fd.embedders must be a non-empty list of embedder names")
    for e in p["embedders"]:
        check.choice("fd.embedders", e, EMBEDDERS)
    if not isinstance(p["layers"], dict):
        check.fail("[fd.layers] must be a table embedder = layer")
    for e, layer in p["layers"].items():
        check.choice("fd.layers", e, p["embedders"])
        if not isinstance(layer, str):
            check.fail(f"fd.layers.{e} = {layer!r} must be text")
    check.number("fd.intervals_max_dim", p["intervals_max_dim"], integer=True, strict=False)


def check(protocol, ctx) -> None:
    """Weights of every embedder found, and each ``[fd.layers]`` entry an output of its embedder."""
    from ..embedders.base import embedder_class

    p = params(protocol, NAME, DEFAULTS)
    resolve(p["embedders"], ctx.options or {})
    for name, layer in p["layers"].items():
        offered = embedder_class(name).layers
        if layer not in offered:
            raise UserError(f"fd.layers.{name} = '{layer}' is not an output of {name} ({', '.join(offered)})",
                            protocol.source or protocol.name)


def score(rows, protocol, ctx) -> Section:
    """FD of each embedder of ``embedders`` between the generated and the gt clips."""
    import numpy as np

    from ..metrics import fad as fadm
    from ..results.intervals import fad_extras
    from ..results.result import embedder_key

    p = params(protocol, NAME, DEFAULTS)
    pairs, excluded = scored(ctx.pairs)
    aggregate, metas, keys = {}, {}, {}
    for name in p["embedders"]:
        emb, vectors = embed(name, pairs, ctx, p["layers"].get(name))
        layer = p["layers"].get(name, emb.layers[0])
        if layer not in emb.layers:
            raise UserError(f"fd.layers.{name} = '{layer}' is not an output of {name} ({', '.join(emb.layers)})",
                            protocol.source or protocol.name)
        pred = [emb.finalize(emb.select(vectors[str(q.pred)], layer)) for q in pairs]
        gt = [emb.finalize(emb.select(vectors[str(q.gt)], layer)) for q in pairs]
        x, y = np.concatenate(pred), np.concatenate(gt)
        metric = f"fd_{slug(name)}"
        metas[name] = {**emb.meta(), "layer": layer, "pred_vectors": len(x), "gt_vectors": len(y)}
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
        keys[metric] = embedder_key(emb.meta(), layer)
    return {"status": "ok", "meta": {"embedders": metas}, "aggregate": aggregate, "per_clip": {},
            "excluded": excluded, "comparable_keys": {k: v for k, v in keys.items() if v}}
