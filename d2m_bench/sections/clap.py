"""The ``[clap]`` section: CLAP score of generated clips against text prompts.

For each clip with a prompt, the cosine similarity between the CLAP audio embedding of the
generated clip (the embedder's ``clip`` output: peak-normalised to -1 dBFS, the whole clip up to
10 s; see ``d2m_bench.embedders.clap``) and the CLAP text embedding of its prompt, times
``scale``; the metric ``clap_score_<embedder>`` is the mean over clips (stable-audio-metrics
``clap_score``; ``scale = 100`` gives the x100 figure some tables print). With
``gt_reference = true`` the ground-truth clips are scored against the same prompts as
``clap_score_gt_<embedder>``, the reference a generated set can be read against.

Prompts (``prompts`` key):

- ``"genre"``: the clip's genre name put into ``template`` (``"{genre} dance music"`` by
  default). The genre is found as the genre section finds it: ``eval --labels`` CSV (id,genre),
  the built dataset's genre column (``--data``), or the AIST++ name of the id (``gBR_...``);
  AIST++ codes become the genre names of the dataset (``gBR`` -> ``break``, ``gLH`` ->
  ``LA style hip-hop``; ``GENRE_NAMES``), any other label is used as written.
- ``"csv"``: ``eval --prompts CSV`` with columns ``id,text`` (the stable-audio-metrics input:
  one prompt per generated id). Its SHA-256 is recorded and enters the comparable key.

Clips without a prompt are excluded (listed with the reason). The result records the CLAP
checkpoint's hash (``weights_sha256``) and the digest of the ``roberta-base`` tokenizer folder
(``text_sha256``); both enter the comparable key.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..errors import UserError
from . import Section, params, validate_table
from .embedding import resolve

NAME = "clap"
DEFAULTS = {"embedder": "clap-laion-music", "prompts": "genre", "template": "{genre} dance music", "scale": 1.0,
            "gt_reference": True, "loading": {}}
PROMPT_SOURCES = ("genre", "csv")
# AIST++ genre codes -> the dance genre names of the AIST Dance Video Database
GENRE_NAMES = {"gBR": "break", "gPO": "pop", "gLO": "lock", "gMH": "middle hip-hop", "gLH": "LA style hip-hop",
               "gHO": "house", "gWA": "waack", "gKR": "krump", "gJS": "street jazz", "gJB": "ballet jazz"}
MAX_PROMPT_CHARS = 10_000



def validate(check, table) -> None:
    if not validate_table(check, NAME, table, DEFAULTS):
        return
    from ..embedders.base import EMBEDDERS

    p = {**DEFAULTS, **table}
    check.choice("clap.embedder", p["embedder"], [e for e in EMBEDDERS if e.startswith("clap-")])
    check.choice("clap.prompts", p["prompts"], PROMPT_SOURCES)
    template = p["template"]
    if not isinstance(template, str) or "{genre}" not in template:
        check.fail(f"clap.template = {template!r} must be text containing {{genre}}")
    try:
        template.format(genre="x")
    except (KeyError, IndexError, ValueError):
        check.fail(f"clap.template = {template!r}: only {{genre}} may stand in braces (write {{{{ }}}} for a brace)")
    check.number("clap.scale", p["scale"], maximum=1000.0)
    check.boolean("clap.gt_reference", p["gt_reference"])
    from .embedding import validate_loading

    validate_loading(check, NAME, p)


def check(protocol, ctx) -> None:
    """Before any audio work: ``prompts = "csv"`` needs a readable ``--prompts`` CSV; the CLAP
    checkpoint and its Hugging Face folders are found."""
    p = params(protocol, NAME, DEFAULTS)
    options = ctx.options or {}
    where = protocol.source or protocol.name
    if p["prompts"] == "csv":
        if not options.get("prompts"):
            raise UserError('[clap] prompts = "csv" needs eval --prompts CSV (columns id,text)', where)
        read_prompts(options["prompts"])
    resolve([p["embedder"]], options)


def read_prompts(path) -> dict:
    """id -> prompt text from a CSV with columns id,text; one-line UserError naming the file otherwise."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not {"id", "text"} <= {(f or "").strip() for f in reader.fieldnames or []}:
                raise UserError("prompts CSV needs the columns id,text", path)
            out = {}
            for i, row in enumerate(reader, start=2):
                row = {(k or "").strip(): v for k, v in row.items()}
                cid, text = (row.get("id") or "").strip(), (row.get("text") or "").strip()
                if not cid or not text:
                    raise UserError(f"line {i}: empty id or text", path)
                if len(text) > MAX_PROMPT_CHARS:
                    raise UserError(f"line {i}: prompt longer than {MAX_PROMPT_CHARS} characters", path)
                if cid in out and out[cid] != text:
                    raise UserError(f"line {i}: id '{cid}' has two different prompts", path)
                out[cid] = text
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"unreadable prompts CSV ({exc.__class__.__name__}: {exc})", path) from None
    if not out:
        raise UserError("prompts CSV has no rows", path)
    return out


def genre_prompt(genre: str, template: str) -> str:
    return template.format(genre=GENRE_NAMES.get(genre, genre))


def _prompts(pairs, p, ctx) -> tuple[dict, dict, str]:
    """(id -> prompt, description of the source for the result, reason text for an id without one)."""
    options = ctx.options or {}
    if p["prompts"] == "csv":
        from ..io.cache import file_digest

        path = options["prompts"]
        table = read_prompts(path)
        return ({q.id: table[q.id] for q in pairs if q.id in table},
                {"prompts": "csv", "prompts_file": str(path), "prompts_sha256": file_digest(path)},
                "no prompt for this id in the prompts CSV")
    from .genre import name_genre, read_labels

    labels = read_labels(options["labels"]) if options.get("labels") else {}
    data_genres = {s.segment_id: s.genre for s in ctx.data.segments()} if ctx.data is not None else {}
    out = {}
    for q in pairs:
        genre = labels.get(q.id) or data_genres.get(q.id) or name_genre(q.id)
        if genre:
            out[q.id] = genre_prompt(genre, p["template"])
    return out, {"prompts": "genre", "template": p["template"]}, \
        "no genre label for this id (AIST++ name, --data or --labels)"


def _clip_embedder(name, options):
    """The embedder's ``clip`` output: on the network an [fd] entry of this run already loaded
    from the same files when there is one (``for_layer``), else a newly built one."""
    from ..embedders.base import resolve_device, resolve_embedder
    from ..embedders.clap import ClapEmbedder
    from . import embedding

    files = resolve_embedder(name, weights=(options.get("weights") or {}).get(name), hub_weights=options.get("weights"))
    for emb in embedding._EMBEDDERS.values():
        if (isinstance(emb, ClapEmbedder) and emb.name == name and emb.weights_path == str(files["weights"])
                and emb.hub_folders == files["hub"] and emb.device == resolve_device(options.get("device"))):
            return emb.for_layer("clip")
    embedding._EMBEDDERS.clear()  # one network at a time, as the other sections keep it
    emb = ClapEmbedder(files["weights"], name=name, layer="clip", hub_folders=files["hub"],
                       device=resolve_device(options.get("device")))
    embedding._EMBEDDERS[("clap-section", name, str(files["weights"]))] = emb
    return emb


def score(rows, protocol, ctx) -> Section:
    """CLAP score of the generated clips (and of the gt clips, the reference) against their prompts."""
    import numpy as np

    from ..embedders import embed_files
    from ..io.cache import FileCache
    from ..io.loading import loading_table
    from ..metrics.distributions import cosine_per_clip
    from ..results.result import metric_summary
    from .embedding import key as embedding_key, scored, slug

    p = params(protocol, NAME, DEFAULTS)
    pairs, excluded = scored(ctx.pairs)
    prompts, source, missing = _prompts(pairs, p, ctx)
    excluded += [{"id": q.id, "reason": missing} for q in pairs if q.id not in prompts]
    pairs = [q for q in pairs if q.id in prompts]
    if not pairs:
        return {"status": "skipped", "reason": "no clip has a prompt", "excluded": excluded, "meta": source}
    emb = _clip_embedder(p["embedder"], ctx.options or {})
    sides = [("pred", "generated")] + ([("gt", "ground-truth (reference)")] if p["gt_reference"] else [])
    paths = [getattr(q, side) for side, _ in sides for q in pairs]
    vectors = embed_files(paths, emb, cache=FileCache(emb.name, enabled=ctx.cache), progress=ctx.progress,
                          loading=p["loading"])
    texts = list(dict.fromkeys(prompts[q.id] for q in pairs))
    by_text = dict(zip(texts, emb.embed_texts(texts)))
    text_vectors = np.stack([by_text[prompts[q.id]] for q in pairs])
    meta = {**emb.meta(), **source, "clips": len(pairs), "distinct_prompts": len(texts), "scale": p["scale"],
            "loading": loading_table(p["loading"])}
    key = embedding_key(emb, "clip", p["loading"])
    key = key and key + f":text-{emb.text_sha256[:12]}" + (
        f":prompts-{source['prompts_sha256'][:12]}" if "prompts_sha256" in source else "")
    aggregate, per_clip, keys = {}, {q.id: {} for q in pairs}, {}
    for side, what in sides:
        audio = np.concatenate([emb.select(vectors[str(getattr(q, side))], "clip") for q in pairs])
        values = cosine_per_clip(audio, text_vectors) * p["scale"]
        metric = f"clap_score{'' if side == 'pred' else '_gt'}_{slug(emb.name)}"
        for q, v in zip(pairs, values):
            per_clip[q.id][metric] = float(v)
        aggregate[metric] = metric_summary(
            values.tolist(), unit="score", higher_is_better=True, embedder=emb.name, layer="clip",
            weights_sha256=emb.weights_sha256, text_sha256=emb.text_sha256, scale=p["scale"], **source,
            definition=f"mean over clips of the cosine between the {emb.name} audio embedding of the {what} clip "
                       "(peak -1 dBFS; whole clip up to 10 s, else the mean of end-aligned 10-s windows) and the "
                       f"text embedding of its prompt, x{p['scale']:g} (stable-audio-metrics clap_score)")
        if key:
            keys[metric] = key
    return {"status": "ok", "meta": meta, "aggregate": aggregate, "per_clip": per_clip, "excluded": excluded,
            "comparable_keys": keys}
