"""The ``[kid]`` section: Kernel Inception Distance (``d2m_bench.metrics.kid``, audioldm_eval's
``calculate_kid``) between the generated clips' vectors and the ground truth's (or a
``background`` folder or statistics file with embeddings), one metric ``kid_<embedder>`` per
entry of ``embedders`` (layer per embedder in ``[kid.layers]``, default its first output).
"""
from __future__ import annotations

from . import Section, params, validate_table
from .embedding import (check_embedders, embed_layer, key, meta, scored, side_vectors, slug, validate_embedders,
                        validate_loading)

NAME = "kid"
DEFAULTS = {"embedders": ["panns-cnn14-16k"], "layers": {}, "subsets": 100, "subset_size": 1000, "degree": 3,
            "gamma": 0.0, "coef0": 1.0, "seed": 2020, "background": "", "loading": {}}


def validate(check, table) -> None:
    if not validate_table(check, NAME, table, DEFAULTS):
        return
    p = {**DEFAULTS, **table}
    validate_embedders(check, NAME, p)
    validate_loading(check, NAME, p)
    check.number("kid.subsets", p["subsets"], integer=True, minimum=1, strict=False, maximum=100_000)
    check.number("kid.subset_size", p["subset_size"], integer=True, minimum=2, strict=False)
    check.number("kid.degree", p["degree"], integer=True, minimum=1, strict=False, maximum=10)
    check.number("kid.gamma", p["gamma"], strict=False)  # 0: 1 / dim, audioldm_eval's None
    check.number("kid.coef0", p["coef0"], strict=False)
    check.number("kid.seed", p["seed"], integer=True, strict=False, maximum=2 ** 32 - 1)


def check(protocol, ctx) -> None:
    check_embedders(protocol, ctx, NAME, DEFAULTS)


def settings(p: dict) -> dict:
    """The metric's keyword arguments from the table (gamma 0 -> None: 1 / dim)."""
    return {"subsets": p["subsets"], "subset_size": p["subset_size"], "degree": p["degree"],
            "gamma": p["gamma"] or None, "coef0": p["coef0"], "seed": p["seed"]}


def score(rows, protocol, ctx) -> Section:
    """KID of each embedder between the generated clips and the reference set."""
    import numpy as np

    from ..metrics.kid import kernel_inception_distance

    p = params(protocol, NAME, DEFAULTS)
    pairs, excluded = scored(ctx.pairs)
    aggregate, metas, keys = {}, {}, {}
    for name in p["embedders"]:
        emb, vectors, layer = embed_layer(NAME, name, pairs, ctx, p["layers"], protocol.source or protocol.name,
                                          p["loading"])
        x = np.concatenate(side_vectors(emb, vectors, pairs, "pred", layer))
        reference, what = reference_vectors(p["background"], emb, layer, pairs, vectors, ctx, p["loading"])
        metas[name] = {**meta(emb, p["loading"]), "layer": layer, "reference": what}
        if reference is None or min(len(x), len(reference)) < 2:
            metas[name]["skipped"] = "fewer than 2 vectors on a side" if reference is not None else \
                "the background statistics file holds no embeddings (d2m-bench stats --embeddings)"
            continue
        out = kernel_inception_distance(x, reference, **settings(p))
        metric = f"kid_{slug(name)}"
        aggregate[metric] = {
            "value": out["value"], "std_over_subsets": out["std"], "subset_size": out["subset_size"],
            "subsets": out["subsets"], "n": len(pairs), "unit": "score", "higher_is_better": False,
            "embedder": name, "layer": layer, "weights_sha256": emb.weights_sha256, "reference": what,
            "ci": None, "ci_note": "std over subsets as audioldm_eval reports it; no bootstrap CI",
            "definition": f"unbiased polynomial-kernel MMD^2 of the {name} vectors ({layer}) over random subsets, "
                          "mean over subsets (audioldm_eval calculate_kid)"}
        keys[metric] = key(emb, layer, p["loading"])
    return {"status": "ok", "meta": {"embedders": metas, "settings": settings(p)}, "aggregate": aggregate,
            "per_clip": {}, "excluded": excluded, "comparable_keys": {k: v for k, v in keys.items() if v}}


def reference_vectors(background, emb, layer, pairs, vectors, ctx, loading=None):
    """(reference vectors or None, what they are): the gt clips', or a background set's."""
    import numpy as np

    if not background:
        return np.concatenate(side_vectors(emb, vectors, pairs, "gt", layer)), "ground truth"
    from ..sets.score import load_set

    s = load_set(background, emb, layer, role="background", cache=ctx.cache, progress=ctx.progress, loading=loading)
    return s.vectors, {"background": s.summary()}
