"""The ``[inception]`` section: Inception Score of the generated clips' label distributions (and
of the ground-truth clips, as the reference), ``splits`` / ``shuffle`` / ``seed`` as audioldm_eval.
"""
from __future__ import annotations

from . import Section, params, validate_table
from .embedding import (check_classifiers, classifier_names, embed, key, meta, scored, slug, validate_classifiers,
                        validate_loading)

NAME = "inception"
DEFAULTS = {"classifier": "panns-cnn14", "splits": 10, "shuffle": True, "seed": 2020, "gt_reference": True,
            "loading": {}}



def validate(check, table) -> None:
    if not validate_table(check, NAME, table, DEFAULTS):
        return
    p = {**DEFAULTS, **table}
    validate_classifiers(check, NAME, p)
    validate_loading(check, NAME, p)
    check.number("inception.splits", p["splits"], integer=True, minimum=1, strict=False, maximum=10_000)
    check.boolean("inception.shuffle", p["shuffle"])
    check.boolean("inception.gt_reference", p["gt_reference"])
    check.number("inception.seed", p["seed"], integer=True, strict=False, maximum=2 ** 32 - 1)


def check(protocol, ctx) -> None:
    check_classifiers(protocol, ctx, NAME, DEFAULTS)


def score(rows, protocol, ctx) -> Section:
    """Inception Score of the generated clips (and of the gt clips, the reference)."""
    import numpy as np

    from ..metrics import distributions as dm

    p = params(protocol, NAME, DEFAULTS)
    pairs, excluded = scored(ctx.pairs)
    if len(pairs) < p["splits"]:
        return {"status": "skipped", "reason": f"{len(pairs)} clip(s), fewer than inception.splits = {p['splits']}",
                "excluded": excluded}
    aggregate, keys, metas = {}, {}, {}
    sides = [("pred", "generated")] + ([("gt", "ground-truth (reference)")] if p["gt_reference"] else [])
    for name in classifier_names(p):
        emb, vectors = embed(name, pairs, ctx, loading=p["loading"])
        metas[name] = meta(emb, p["loading"])
        for side, what in sides:
            logits = np.concatenate([emb.select(vectors[str(getattr(q, side))], "logits") for q in pairs])
            mean, std = dm.inception_score(logits, splits=p["splits"], shuffle=p["shuffle"], seed=p["seed"])
            metric = f"inception_score{'' if side == 'pred' else '_gt'}_{slug(emb.name)}"
            aggregate[metric] = {
                "value": mean, "std_over_splits": std, "n": len(pairs), "unit": "score", "higher_is_better": True,
                "embedder": emb.name, "layer": "logits", "weights_sha256": emb.weights_sha256,
                "splits": p["splits"], "shuffle": p["shuffle"], "seed": p["seed"],
                "definition": f"Inception Score of the {what} clips' {emb.name} softmax label distributions: "
                              "mean over splits of exp(mean KL(p(y|x) || p(y))) (audioldm_eval calculate_isc)"}
            keys[metric] = key(emb, "logits", p["loading"])
    return {"status": "ok", "meta": {"classifiers": metas, "clips": len(pairs)}, "aggregate": aggregate,
            "per_clip": {}, "excluded": excluded, "comparable_keys": {k: v for k, v in keys.items() if v}}
