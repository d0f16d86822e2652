"""The ``[kl]`` section: KL divergence of the label distributions of ``classifier`` (one name or
a list; any embedder with a ``logits`` output: PANNs CNN14, PaSST), pred and gt paired by id, one
metric per convention (softmax, sigmoid) and direction (ref_to_gen = audioldm_eval, gen_to_ref =
stable-audio-metrics), named ``kl_<convention>_<direction>_<classifier>``.
"""
from __future__ import annotations

from . import Section, params, validate_table
from .embedding import (check_classifiers, classifier_names, embed, key, meta, scored, slug, validate_classifiers,
                        validate_loading)

NAME = "kl"
DEFAULTS = {"classifier": "panns-cnn14", "conventions": ["softmax"], "directions": ["ref_to_gen"], "eps": 1e-6,
            "loading": {}}



def validate(check, table) -> None:
    if not validate_table(check, NAME, table, DEFAULTS):
        return
    from ..metrics.distributions import CONVENTIONS, DIRECTIONS

    p = {**DEFAULTS, **table}
    validate_classifiers(check, NAME, p)
    validate_loading(check, NAME, p)
    for field, options in (("conventions", CONVENTIONS), ("directions", DIRECTIONS)):
        if not isinstance(p[field], list) or not p[field]:
            check.fail(f"kl.{field} must be a non-empty list ({', '.join(options)})")
        for v in p[field]:
            check.choice(f"kl.{field}", v, options)
    check.number("kl.eps", p["eps"], strict=False, maximum=1.0)


def check(protocol, ctx) -> None:
    check_classifiers(protocol, ctx, NAME, DEFAULTS)


def score(rows, protocol, ctx) -> Section:
    """KL divergence per clip of the classifiers' label distributions, gt and prediction paired by id."""
    import numpy as np

    from ..metrics import distributions as dm
    from ..results.result import metric_summary

    p = params(protocol, NAME, DEFAULTS)
    pairs, excluded = scored(ctx.pairs)
    aggregate, per_clip, keys, metas = {}, {q.id: {} for q in pairs}, {}, {}
    source = {"ref_to_gen": "audioldm_eval (KL(reference || generated))",
              "gen_to_ref": "stable-audio-metrics (KL(generated || reference))"}
    for name in classifier_names(p):
        emb, vectors = embed(name, pairs, ctx, loading=p["loading"])
        metas[name] = meta(emb, p["loading"])
        gen = np.concatenate([emb.select(vectors[str(q.pred)], "logits") for q in pairs])
        ref = np.concatenate([emb.select(vectors[str(q.gt)], "logits") for q in pairs])
        for convention in p["conventions"]:
            for direction in p["directions"]:
                values = dm.kl_per_clip(gen, ref, convention=convention, direction=direction, eps=p["eps"])
                metric = f"kl_{convention}_{direction}_{slug(emb.name)}"
                for q, v in zip(pairs, values):
                    per_clip[q.id][metric] = float(v)
                aggregate[metric] = metric_summary(
                    values.tolist(), unit="score", higher_is_better=False, embedder=emb.name, layer="logits",
                    weights_sha256=emb.weights_sha256, convention=convention, direction=direction, eps=p["eps"],
                    definition=f"per clip sum over the {emb.name} classes of p (log p - log(q + eps)) with "
                               f"{convention} label probabilities, pred and gt paired by id, mean over clips: "
                               f"{source[direction]}")
                keys[metric] = key(emb, "logits", p["loading"])
    return {"status": "ok", "meta": {"classifiers": metas, "pairs": len(pairs)}, "aggregate": aggregate,
            "per_clip": per_clip, "excluded": excluded, "comparable_keys": {k: v for k, v in keys.items() if v}}
