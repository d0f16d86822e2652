"""The audio-metric sections of the video-to-music literature: ``[fd]``, ``[kl]``, ``[inception]``.

Each reads its protocol table (run when ``enabled = true``), embeds the clips through the
registered embedders (``d2m_bench.embedders``: cached by content + config + weights hash) and
calls the pure metric functions (``metrics.fad``, ``metrics.distributions``):

- ``[fd]``: Frechet distance between Gaussians fitted to the generated and the ground-truth
  embeddings, one metric ``fd_<embedder>`` per entry of ``embedders`` (layer per embedder in
  ``[fd.layers]``, default: the embedder's first output), with the bootstrap CI and FAD-inf of
  ``d2m_bench.results.intervals`` where the dimension is at most ``intervals_max_dim`` (each replicate
  is an eigendecomposition of a dim x dim matrix).
- ``[kl]``: KL divergence of the label distributions of ``classifier`` (one name or a list; any
  embedder with a ``logits`` output: PANNs CNN14, PaSST), pred and gt paired by id,
  one metric per convention (softmax, sigmoid) and direction (ref_to_gen = audioldm_eval,
  gen_to_ref = stable-audio-metrics), named ``kl_<convention>_<direction>_<classifier>``.
- ``[clap]``: CLAP score, the cosine of each generated clip's CLAP audio embedding and its text
  prompt's (``d2m_bench.sections.clap``).
- ``[inception]``: Inception Score of the generated clips' label distributions (and of the
  ground-truth clips, as the reference), ``splits`` / ``shuffle`` / ``seed`` as audioldm_eval.

Every metric records its embedder's weights hash; ``comparable_keys`` names it for the
leaderboard (weights are not a protocol parameter).
"""
from __future__ import annotations

import numpy as np

from ..embedders.base import embedder_class
from ..errors import UserError
from ..results.result import embedder_key, metric_summary

DEFAULTS = {
    "fd": {"embedders": ["vggish"], "layers": {}, "intervals_max_dim": 512},
    "kl": {"classifier": "panns-cnn14", "conventions": ["softmax"], "directions": ["ref_to_gen"], "eps": 1e-6},
    "inception": {"classifier": "panns-cnn14", "splits": 10, "shuffle": True, "seed": 2020, "gt_reference": True},
    "clap": {"embedder": "clap-laion-music", "prompts": "genre", "template": "{genre} dance music", "scale": 1.0,
             "gt_reference": True},
}
TABLES = tuple(DEFAULTS)


def _params(protocol, table) -> dict:
    return {**DEFAULTS[table], **{k: v for k, v in protocol.section(table).items() if k != "enabled"}}


def check_table(check, name: str, table: dict) -> None:
    """Protocol validation of one table (``check`` is protocol._EvalCheck: fail/keys/number/...)."""
    from ..embedders.base import EMBEDDERS
    from ..metrics.distributions import CONVENTIONS, DIRECTIONS

    check.keys(name, table, ("enabled", *DEFAULTS[name]))
    if "enabled" in table:
        check.boolean(f"{name}.enabled", table["enabled"])
    p = {**DEFAULTS[name], **table}
    if name == "clap":
        from .clap import check_clap_table

        check_clap_table(check, p, EMBEDDERS)
        return
    if name == "fd":
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
        return
    names = classifier_names(p)
    if not names:
        check.fail(f"{name}.classifier must name an embedder with logits, or be a non-empty list of them")
    for c in names:
        check.choice(f"{name}.classifier", c, classifiers())
    if name == "kl":
        for key, options in (("conventions", CONVENTIONS), ("directions", DIRECTIONS)):
            if not isinstance(p[key], list) or not p[key]:
                check.fail(f"kl.{key} must be a non-empty list ({', '.join(options)})")
            for v in p[key]:
                check.choice(f"kl.{key}", v, options)
        check.number("kl.eps", p["eps"], strict=False, maximum=1.0)
    else:
        check.number("inception.splits", p["splits"], integer=True, minimum=1, strict=False, maximum=10_000)
        check.boolean("inception.shuffle", p["shuffle"])
        check.boolean("inception.gt_reference", p["gt_reference"])
        check.number("inception.seed", p["seed"], integer=True, strict=False, maximum=2 ** 32 - 1)


def classifiers() -> list:
    """The registered embedders whose class offers a ``logits`` output (PANNs CNN14, PaSST, ...):
    the label distributions of ``[kl]`` and ``[inception]``. Classes are imported, no weights loaded;
    a backend module that cannot even be imported offers nothing."""
    from ..embedders.base import EMBEDDERS

    out = []
    for name in EMBEDDERS:
        try:
            layers = getattr(embedder_class(name), "layers", ())
        except ImportError:
            continue
        if "logits" in layers:
            out.append(name)
    return out


def classifier_names(p) -> list:
    """A ``[kl]``/``[inception]`` table's ``classifier``: one name, or a list of names (each scored)."""
    return list(p["classifier"]) if isinstance(p["classifier"], list) else [p["classifier"]]


def _needed(protocol) -> list:
    names = []
    if protocol.section("fd").get("enabled"):
        names += _params(protocol, "fd")["embedders"]
    for table in ("kl", "inception"):
        if protocol.section(table).get("enabled"):
            names += classifier_names(_params(protocol, table))
    if protocol.section("clap").get("enabled"):
        names.append(_params(protocol, "clap")["embedder"])
    return list(dict.fromkeys(names))


def check_ready(protocol, options=None) -> None:
    """Raise now what building the embedders would raise (missing library or weights)."""
    from ..embedders.base import EMBEDDERS, resolve_embedder

    options = options or {}
    if protocol.section("clap").get("enabled"):  # prompts CSV named and readable before any audio work
        from .clap import check_prompts

        check_prompts(_params(protocol, "clap"), options, protocol.source or protocol.name)
    for name in options.get("trust_remote_code") or ():
        if name not in EMBEDDERS or not getattr(embedder_class(name), "remote_code_capable", False):
            capable = [e for e in EMBEDDERS if getattr(embedder_class(e), "remote_code_capable", False)]
            raise UserError(f"--trust-remote-code: '{name}' is not an embedder whose weights folder can hold model code "
                            f"({', '.join(capable)})")
    for name in _needed(protocol):
        resolve_embedder(name, vggish_weights=options.get("vggish_weights"),
                         weights=(options.get("weights") or {}).get(name),
                         trust_remote_code=name in (options.get("trust_remote_code") or ()),
                         hub_weights=options.get("weights"))
    if protocol.section("fd").get("enabled"):
        for name, layer in _params(protocol, "fd")["layers"].items():
            offered = embedder_class(name).layers
            if layer not in offered:
                raise UserError(f"fd.layers.{name} = '{layer}' is not an output of {name} ({', '.join(offered)})",
                                protocol.source or protocol.name)
    for table in ("kl", "inception"):
        if protocol.section(table).get("enabled"):
            for name in classifier_names(_params(protocol, table)):
                if "logits" not in embedder_class(name).layers:
                    raise UserError(f"{table}.classifier = '{name}' has no label logits",
                                    protocol.source or protocol.name)


_EMBEDDERS = {}  # (name, weights option) -> embedder: the sections of one run share a loaded network


def _embedder(name, options, layer=None):
    from ..embedders import get_embedder

    explicit = (options.get("weights") or {}).get(name) or (options.get("vggish_weights") if name == "vggish" else None)
    trusted = name in (options.get("trust_remote_code") or ())
    layer = layer if getattr(embedder_class(name), "layer_at_build", False) else None  # MERT caches one layer
    key = (name, str(explicit), trusted, layer, str(sorted((options.get("weights") or {}).items())))
    if key not in _EMBEDDERS:
        _EMBEDDERS.clear()  # one run's networks at a time: CNN14 alone holds 80 M parameters
        _EMBEDDERS[key] = get_embedder(name, vggish_weights=options.get("vggish_weights"),
                                       weights=(options.get("weights") or {}).get(name), layer=layer,
                                       trust_remote_code=trusted, hub_weights=options.get("weights"))
    return _EMBEDDERS[key]


def _scored(pairs):
    kept = [p for p in pairs if p.pred is not None]
    excluded = [{"id": p.id, "reason": "no prediction"} for p in pairs if p.pred is None]
    return kept, excluded


def _embed(name, pairs, ctx, layer=None):
    from ..io.cache import FileCache
    from ..embedders import embed_files

    emb = _embedder(name, ctx.options or {}, layer)
    cache = FileCache(emb.name, enabled=ctx.cache)
    rows = embed_files([p.pred for p in pairs] + [p.gt for p in pairs], emb, cache=cache, progress=ctx.progress)
    return emb, rows


def _slug(name):
    return name.replace("-", "_")


def fd_section(pairs, protocol, ctx) -> dict:
    from ..results.intervals import fad_extras
    from ..metrics import fad as fadm

    p = _params(protocol, "fd")
    pairs, excluded = _scored(pairs)
    aggregate, metas, keys = {}, {}, {}
    for name in p["embedders"]:
        emb, rows = _embed(name, pairs, ctx, p["layers"].get(name))
        layer = p["layers"].get(name, emb.layers[0])
        if layer not in emb.layers:
            raise UserError(f"fd.layers.{name} = '{layer}' is not an output of {name} ({', '.join(emb.layers)})",
                            protocol.source or protocol.name)
        pred = [emb.finalize(emb.select(rows[str(q.pred)], layer)) for q in pairs]
        gt = [emb.finalize(emb.select(rows[str(q.gt)], layer)) for q in pairs]
        x, y = np.concatenate(pred), np.concatenate(gt)
        metric = f"fd_{_slug(name)}"
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


def kl_section(pairs, protocol, ctx) -> dict:
    from ..metrics import distributions as dm

    p = _params(protocol, "kl")
    pairs, excluded = _scored(pairs)
    aggregate, per_clip, keys, metas = {}, {q.id: {} for q in pairs}, {}, {}
    source = {"ref_to_gen": "audioldm_eval (KL(reference || generated))",
              "gen_to_ref": "stable-audio-metrics (KL(generated || reference))"}
    for name in classifier_names(p):
        emb, rows = _embed(name, pairs, ctx)
        metas[name] = emb.meta()
        gen = np.concatenate([emb.select(rows[str(q.pred)], "logits") for q in pairs])
        ref = np.concatenate([emb.select(rows[str(q.gt)], "logits") for q in pairs])
        for convention in p["conventions"]:
            for direction in p["directions"]:
                values = dm.kl_per_clip(gen, ref, convention=convention, direction=direction, eps=p["eps"])
                metric = f"kl_{convention}_{direction}_{_slug(emb.name)}"
                for q, v in zip(pairs, values):
                    per_clip[q.id][metric] = float(v)
                aggregate[metric] = metric_summary(
                    values.tolist(), unit="score", higher_is_better=False, embedder=emb.name, layer="logits",
                    weights_sha256=emb.weights_sha256, convention=convention, direction=direction, eps=p["eps"],
                    definition=f"per clip sum over the {emb.name} classes of p (log p - log(q + eps)) with "
                               f"{convention} label probabilities, pred and gt paired by id, mean over clips: "
                               f"{source[direction]}")
                keys[metric] = embedder_key(emb.meta(), "logits")
    return {"status": "ok", "meta": {"classifiers": metas, "pairs": len(pairs)}, "aggregate": aggregate,
            "per_clip": per_clip, "excluded": excluded, "comparable_keys": {k: v for k, v in keys.items() if v}}


def inception_section(pairs, protocol, ctx) -> dict:
    from ..metrics import distributions as dm

    p = _params(protocol, "inception")
    pairs, excluded = _scored(pairs)
    if len(pairs) < p["splits"]:
        return {"status": "skipped", "reason": f"{len(pairs)} clip(s), fewer than inception.splits = {p['splits']}",
                "excluded": excluded}
    aggregate, keys, metas = {}, {}, {}
    sides = [("pred", "generated")] + ([("gt", "ground-truth (reference)")] if p["gt_reference"] else [])
    for name in classifier_names(p):
        emb, rows = _embed(name, pairs, ctx)
        metas[name] = emb.meta()
        for side, what in sides:
            logits = np.concatenate([emb.select(rows[str(getattr(q, side))], "logits") for q in pairs])
            mean, std = dm.inception_score(logits, splits=p["splits"], shuffle=p["shuffle"], seed=p["seed"])
            metric = f"inception_score{'' if side == 'pred' else '_gt'}_{_slug(emb.name)}"
            aggregate[metric] = {
                "value": mean, "std_over_splits": std, "n": len(pairs), "unit": "score", "higher_is_better": True,
                "embedder": emb.name, "layer": "logits", "weights_sha256": emb.weights_sha256,
                "splits": p["splits"], "shuffle": p["shuffle"], "seed": p["seed"],
                "definition": f"Inception Score of the {what} clips' {emb.name} softmax label distributions: "
                              "mean over splits of exp(mean KL(p(y|x) || p(y))) (audioldm_eval calculate_isc)"}
            keys[metric] = embedder_key(emb.meta(), "logits")
    return {"status": "ok", "meta": {"classifiers": metas, "clips": len(pairs)}, "aggregate": aggregate,
            "per_clip": {}, "excluded": excluded, "comparable_keys": {k: v for k, v in keys.items() if v}}
