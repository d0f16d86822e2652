"""What the embedder sections (``fd``, ``kl``, ``inception``, ``clap``) share: one loaded network
per run, cached embeddings of the pairs' files, weights resolved before any audio work, and the
classifier lists of ``[kl]`` / ``[inception]``.

Each section embeds the clips through the registered embedders (``d2m_bench.embedders``: cached
by content + config + weights hash) and calls the pure metric functions (``metrics.fad``,
``metrics.distributions``). Every metric records its embedder's weights hash; its section's
``comparable_keys`` names it for the leaderboard (weights are not a protocol parameter).
"""
from __future__ import annotations

from ..errors import UserError


def check_trust_remote_code(options) -> None:
    """``--trust-remote-code NAME`` names an embedder whose weights folder may ship model code
    (checked on every run, whether or not a section uses NAME: a typo must not pass silently)."""
    from ..embedders.base import EMBEDDERS, embedder_class

    for name in options.get("trust_remote_code") or ():
        if name not in EMBEDDERS or not getattr(embedder_class(name), "remote_code_capable", False):
            capable = [e for e in EMBEDDERS if getattr(embedder_class(e), "remote_code_capable", False)]
            raise UserError(f"--trust-remote-code: '{name}' is not an embedder whose weights folder can hold model code "
                            f"({', '.join(capable)})")


def resolve(names, options) -> None:
    """Raise now what building the embedders ``names`` would raise (missing library or weights)."""
    from ..embedders.base import resolve_embedder

    for name in names:
        resolve_embedder(name, vggish_weights=options.get("vggish_weights"),
                         weights=(options.get("weights") or {}).get(name),
                         trust_remote_code=name in (options.get("trust_remote_code") or ()),
                         hub_weights=options.get("weights"))


def validate_embedders(check, table: str, p: dict) -> None:
    """Protocol validation of an ``embedders`` list, its ``[<table>.layers]`` and ``background``
    (``[fd]``, ``[kid]``)."""
    from ..embedders.base import EMBEDDERS

    if not isinstance(p["embedders"], list) or not p["embedders"]:
        check.fail(f"{table}.embedders must be a non-empty list of embedder names")
    for e in p["embedders"]:
        check.choice(f"{table}.embedders", e, EMBEDDERS)
    if not isinstance(p["layers"], dict):
        check.fail(f"[{table}.layers] must be a table embedder = layer")
    for e, layer in p["layers"].items():
        check.choice(f"{table}.layers", e, p["embedders"])
        if not isinstance(layer, str):
            check.fail(f"{table}.layers.{e} = {layer!r} must be text")
    if not isinstance(p["background"], str):
        check.fail(f"{table}.background must be a folder or statistics file path, or \"\" for the ground truth")


def check_embedders(protocol, ctx, table: str, defaults: dict) -> None:
    """The embedders of ``[fd]`` / ``[kid]``: weights found, each ``layers`` entry an output of its
    embedder, the ``background`` folder or statistics file present."""
    from pathlib import Path

    from ..embedders.base import embedder_class
    from . import params

    p = params(protocol, table, defaults)
    resolve(p["embedders"], ctx.options or {})
    for name, layer in p["layers"].items():
        offered = embedder_class(name).layers
        if layer not in offered:
            raise UserError(f"{table}.layers.{name} = '{layer}' is not an output of {name} ({', '.join(offered)})",
                            protocol.source or protocol.name)
    if p["background"] and not Path(p["background"]).exists():
        raise UserError(f"{table}.background: no such folder or statistics file", p["background"])


def check_classifiers(protocol, ctx, table: str, defaults: dict) -> None:
    """The classifiers of ``[kl]`` / ``[inception]``: weights found, each offers label logits."""
    from ..embedders.base import embedder_class
    from . import params

    names = classifier_names(params(protocol, table, defaults))
    resolve(names, ctx.options or {})
    for name in names:
        if "logits" not in embedder_class(name).layers:
            raise UserError(f"{table}.classifier = '{name}' has no label logits", protocol.source or protocol.name)


def validate_classifiers(check, table: str, p: dict) -> list:
    """Protocol validation of a ``classifier`` key (one name or a list); returns the names."""
    names = classifier_names(p)
    if not names:
        check.fail(f"{table}.classifier must name an embedder with logits, or be a non-empty list of them")
    for c in names:
        check.choice(f"{table}.classifier", c, classifiers())
    return names


def classifiers() -> list:
    """The registered embedders whose class offers a ``logits`` output (PANNs CNN14, PaSST, ...):
    the label distributions of ``[kl]`` and ``[inception]``. Classes are imported, no weights loaded;
    a backend module that cannot even be imported offers nothing."""
    from ..embedders.base import EMBEDDERS, embedder_class

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


_EMBEDDERS = {}  # (name, weights option) -> embedder: the sections of one run share a loaded network


def embedder(name, options, layer=None):
    """The run's network for ``name`` (built once; a MERT/CLAP network for one ``layer``)."""
    from ..embedders import get_embedder
    from ..embedders.base import embedder_class

    explicit = (options.get("weights") or {}).get(name) or (options.get("vggish_weights") if name == "vggish" else None)
    trusted = name in (options.get("trust_remote_code") or ())
    layer = layer if getattr(embedder_class(name), "layer_at_build", False) else None  # MERT caches one layer
    device = options.get("device")
    key = (name, str(explicit), trusted, layer, str(sorted((options.get("weights") or {}).items())), str(device))
    if key not in _EMBEDDERS:
        _EMBEDDERS.clear()  # one run's networks at a time: CNN14 alone holds 80 M parameters
        _EMBEDDERS[key] = get_embedder(name, vggish_weights=options.get("vggish_weights"),
                                       weights=(options.get("weights") or {}).get(name), layer=layer,
                                       trust_remote_code=trusted, hub_weights=options.get("weights"), device=device)
    return _EMBEDDERS[key]


def scored(pairs):
    """(pairs with a prediction, exclusions of the others)."""
    kept = [p for p in pairs if p.pred is not None]
    excluded = [{"id": p.id, "reason": "no prediction"} for p in pairs if p.pred is None]
    return kept, excluded


def embed(name, pairs, ctx, layer=None, loading=None):
    """(embedder, {path: embedding rows}) of every prediction and gt of ``pairs``, the files read
    as the section's ``loading`` table says (``d2m_bench.io.loading``)."""
    from ..embedders import embed_files
    from ..io.cache import FileCache

    emb = embedder(name, ctx.options or {}, layer)
    cache = FileCache(emb.name, enabled=ctx.cache)
    rows = embed_files([p.pred for p in pairs] + [p.gt for p in pairs], emb, cache=cache, progress=ctx.progress,
                       loading=loading)
    return emb, rows


def meta(emb, loading=None) -> dict:
    """What a section records of an embedder: its ``meta()``, the device it ran on and how the
    files were loaded."""
    from ..io.loading import loading_table

    return {**emb.meta(), "device": str(getattr(emb, "device", "cpu")), "loading": loading_table(loading)}


def key(emb, layer, loading=None) -> str:
    """The comparable key of a metric on ``emb``'s ``layer``, with the loading when it is not
    d2m-bench's own (numbers loaded another way are not compared with these)."""
    from ..io.loading import key_suffix
    from ..results.result import embedder_key

    base = embedder_key(emb.meta(), layer)
    return base + key_suffix(loading) if base else base


def validate_loading(check, table: str, p: dict) -> None:
    from ..io.loading import validate

    validate(check, f"{table}.loading", p.get("loading"))


def embed_layer(table: str, name, pairs, ctx, layers: dict, where, loading=None):
    """(embedder, {path: rows}, layer) for an ``[fd]`` / ``[kid]`` entry: the pairs' files embedded,
    the table's layer for ``name`` (default the embedder's first output) checked."""
    emb, vectors = embed(name, pairs, ctx, layers.get(name), loading)
    layer = layers.get(name, emb.layers[0])
    if layer not in emb.layers:
        raise UserError(f"{table}.layers.{name} = '{layer}' is not an output of {name} ({', '.join(emb.layers)})",
                        where)
    return emb, vectors, layer


def side_vectors(emb, vectors, pairs, side: str, layer: str) -> list:
    """Each pair's ``side`` ("pred" or "gt") vectors of ``layer``, finalised (float64)."""
    return [emb.finalize(emb.select(vectors[str(getattr(q, side))], layer)) for q in pairs]


def slug(name):
    """An embedder name as it appears in metric names (``panns-cnn14`` -> ``panns_cnn14``)."""
    return name.replace("-", "_")


