"""The ``[genre]`` section: retrieval genre accuracy and FAD (spec section 2).

Database: gt segments of ``genre.database_split`` (default train) of the built dataset
``ctx.data``, or the audio files of ``ctx.options["genre_db"]``; labels from the manifest's
genre column, a labels CSV (``id,genre``), or the AIST++ name (its first three characters).
Queries: each predicted clip, labelled with its dance genre; the gt clips of the same ids are
run as queries too (the ceiling). Clip vector = mean of its example embeddings (after the
protocol's post-processing); prediction = label of the nearest database clip (Euclidean,
ties to the lowest database index), or the majority of the k nearest.
FAD compares the per-example embeddings of all predicted clips with those of the gt clips.
Each uses its own layer of the embedder (``genre.layer``, ``genre.fad_layer``): by default
retrieval uses torchvggish's output after the final ReLU (what the D2M-GAN authors' PyTorch
stack most plausibly ran) and FAD the pre-ReLU embedding (the TensorFlow VGGish embedding,
fadtk's and frechet-audio-distance's default). Both layers come from one network pass.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..errors import UserError
from . import Section, validate_table

NAME = "genre"
DEFAULTS = {"embedder": "vggish", "postprocess": False, "pooling": "mean", "database_split": "train",
            "k": 1, "distance": "euclidean", "ties": "lowest_index", "vote": "majority", "fad": True,
            "layer": "relu", "fad_layer": "pre_relu"}
LAYERS = ("relu", "pre_relu")  # VGGish outputs; an embedder with one output ignores them



def validate(check, table) -> None:
    """Types only: the choices are checked by `check` (through ``_params``), before any audio."""
    validate_table(check, NAME, table, DEFAULTS)
    for key in ("postprocess", "fad"):
        if key in table:
            check.boolean(f"genre.{key}", table[key])
    if "k" in table:
        check.number("genre.k", table["k"], integer=True, minimum=1, strict=False)
    for key, value in table.items():
        if key not in ("enabled", "postprocess", "fad", "k") and not isinstance(value, str):
            check.fail(f"genre.{key} = {value!r} must be text")


def _params(protocol) -> dict:
    p = {**DEFAULTS, **{k: v for k, v in protocol.section("genre").items() if k != "enabled"}}
    where = protocol.source or protocol.name
    if p["distance"] not in ("euclidean", "cosine"):
        raise UserError(f"genre.distance '{p['distance']}' is not supported (euclidean, cosine)", where)
    if p["ties"] != "lowest_index":
        raise UserError(f"genre.ties '{p['ties']}' is not supported (lowest_index)", where)
    if p["vote"] != "majority":
        raise UserError(f"genre.vote '{p['vote']}' is not supported (majority)", where)
    if not isinstance(p["k"], int) or p["k"] < 1:
        raise UserError(f"genre.k must be a positive integer, got {p['k']!r}", where)
    for key in ("layer", "fad_layer"):
        if p[key] not in LAYERS:
            raise UserError(f"genre.{key} '{p[key]}' is not supported ({', '.join(LAYERS)})", where)
    return p


def _normalise_label(value: str) -> str:
    from ..data.dataset import GENRES

    value = value.strip()
    return f"g{value}" if f"g{value}" in GENRES else value


def read_labels(path) -> dict:
    """id -> genre from a CSV with columns id,genre (AIST++ codes such as gBR, or BR, or any names)."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if not {"id", "genre"} <= set(reader.fieldnames or []):
                raise UserError("labels CSV needs the columns id,genre", path)
            out = {}
            for i, row in enumerate(reader, start=2):
                if not row["id"] or not row["genre"]:
                    raise UserError(f"line {i}: empty id or genre", path)
                out[row["id"].strip()] = _normalise_label(row["genre"])
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"unreadable labels CSV ({exc})", path) from None
    return out


def name_genre(clip_id: str) -> str | None:
    """AIST++ genre code of a sequence/segment name (first three characters), if it is one."""
    from ..data.dataset import GENRES
    from ..data.segments import parse_aist_name

    name = parse_aist_name(clip_id)
    if name is not None:
        return name.genre
    return clip_id[:3] if clip_id[:3] in GENRES else None


def _database(data, options, p, labels):
    """(entries [(id, path, genre)], description, unlabelled count) or (None, reason, 0)."""
    folder = options.get("genre_db")
    if folder:
        from ..io.pairing import list_media

        files = list_media(folder, "genre database")
        rows = [(sid, path, labels.get(sid) or name_genre(sid)) for sid, path in files.items()]
        origin = f"folder {folder}"
    elif data is not None:
        segs = data.segments(split=p["database_split"])
        rows = [(s.segment_id, data.root / s.audio, labels.get(s.segment_id) or s.genre or None)
                for s in segs if s.audio]
        origin = f"dataset {data.root} split {p['database_split']}"
    else:
        return None, "no genre database (give eval --data DIR with a train split, or --genre-db DIR)", 0
    entries = [r for r in rows if r[2]]
    if not entries:
        return None, f"no genre labels in the database ({origin}; give --labels CSV)", 0
    return entries, origin, len(rows) - len(entries)


def _query_genre(clip_id, labels, data_genres):
    return labels.get(clip_id) or data_genres.get(clip_id) or name_genre(clip_id)


def _retrieve(queries, db_vecs, db_labels, exclude, p):
    from ..metrics import retrieval as rt

    idx, dist = rt.nearest_neighbours(queries, db_vecs, k=p["k"], exclude=exclude)
    predicted = rt.vote(db_labels[idx], k=p["k"])
    return idx, dist, predicted


def _plan(pairs, p, data, options):
    """Database and labelled queries, or the reason the section is skipped:
    ``(skipped dict or None, (entries, origin, unlabelled, queries, excluded))``."""
    labels = read_labels(options["labels"]) if options.get("labels") else {}
    entries, origin, unlabelled = _database(data, options, p, labels)
    if entries is None:
        return {"status": "skipped", "reason": origin}, None
    data_genres = {s.segment_id: s.genre for s in data.segments()} if data is not None else {}
    queries, excluded = [], []
    for pair in pairs:
        genre = _query_genre(pair.id, labels, data_genres)
        if pair.pred is None:
            excluded.append({"id": pair.id, "reason": "no prediction"})
        elif not genre:
            excluded.append({"id": pair.id, "reason": "no genre label for this id (AIST++ name, --data or --labels)"})
        else:
            queries.append((pair, genre))
    if not queries:
        return {"status": "skipped", "reason": "no query clip has a genre label", "excluded": excluded}, None
    if len(entries) < p["k"] + 1:
        raise UserError(f"genre database has {len(entries)} labelled clips; k = {p['k']} needs more ({origin})")
    return None, (entries, origin, unlabelled, queries, excluded)


def check(protocol, ctx) -> None:
    """Raise now the UserError the section would raise later (bad [genre] keys, unreadable
    labels, missing embedder weights), so that eval fails before the beat metrics run.
    Nothing is raised when the section would be skipped (no database, no labels): then
    the embedder is never needed."""
    from ..embedders.base import resolve_embedder

    p = _params(protocol)
    options = ctx.options or {}
    skipped, _ = _plan(ctx.pairs, p, ctx.data, options)
    if skipped is None:
        resolve_embedder(p["embedder"], vggish_weights=options.get("vggish_weights"), postprocess=p["postprocess"],
                         weights=(options.get("weights") or {}).get(p["embedder"]))


def score(rows, protocol, ctx) -> Section:
    """Genre accuracy of the predictions (and of the gt: the ceiling) by retrieval, and FAD."""
    import numpy as np

    from ..data.dataset import GENRES
    from ..io.cache import FileCache
    from ..metrics import fad as fadm
    from ..metrics import retrieval as rt
    from ..results.result import metric_summary

    p = _params(protocol)
    options = ctx.options or {}
    skipped, plan = _plan(ctx.pairs, p, ctx.data, options)
    if skipped is not None:
        return skipped
    entries, origin, unlabelled, queries, excluded = plan

    from ..embedders import embed_files, get_embedder
    from ..embedders.base import clip_vectors

    embedder = get_embedder(p["embedder"], vggish_weights=options.get("vggish_weights"), postprocess=p["postprocess"],
                            weights=(options.get("weights") or {}).get(p["embedder"]), device=options.get("device"))
    cache = FileCache(embedder.name, enabled=ctx.cache)
    paths = [e[1] for e in entries] + [q.pred for q, _ in queries] + [q.gt for q, _ in queries]
    emb = embed_files(paths, embedder, cache=cache, progress=ctx.progress)

    def layer_name(layer):  # what the result records: the protocol's layer, or the embedder's only output
        return layer if layer in embedder.layers else embedder.layers[0]

    def vectors(files, layer=p["layer"]):
        per_example = [embedder.finalize(embedder.select(emb[str(f)], layer_name(layer))) for f in files]
        v = clip_vectors(per_example, pooling=p["pooling"])
        if p["distance"] == "cosine":  # cosine ranking = Euclidean ranking of unit vectors
            v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), np.finfo(float).tiny)
        return v, per_example

    classes = GENRES if all(g in GENRES for g in [e[2] for e in entries] + [g for _, g in queries]) \
        else sorted({e[2] for e in entries} | {g for _, g in queries})
    db_vecs, _ = vectors([e[1] for e in entries])
    db_labels = np.array([classes.index(e[2]) for e in entries])
    db_index = {e[0]: i for i, e in enumerate(entries)}
    exclude = np.array([db_index.get(q.id, -1) for q, _ in queries])
    true = np.array([classes.index(g) for _, g in queries])
    pred_vecs, pred_examples = vectors([q.pred for q, _ in queries])
    gt_vecs, gt_examples = vectors([q.gt for q, _ in queries])
    idx, dist, predicted = _retrieve(pred_vecs, db_vecs, db_labels, exclude, p)
    gidx, gdist, gpredicted = _retrieve(gt_vecs, db_vecs, db_labels, exclude, p)

    per_clip = {}
    for i, (pair, genre) in enumerate(queries):
        per_clip[pair.id] = {
            "genre": genre, "genre_retrieved": classes[predicted[i]], "genre_correct": int(predicted[i] == true[i]),
            "genre_nn_id": entries[idx[i, 0]][0], "genre_nn_distance": float(dist[i, 0]),
            "genre_retrieved_gt": classes[gpredicted[i]], "genre_correct_gt": int(gpredicted[i] == true[i])}
    suffix = "" if embedder.name == "vggish" else "_" + embedder.name.replace("-", "_")
    chance = 1.0 / len(classes)
    aggregate = {}
    how = "nearest" if p["k"] == 1 else f"{p['k']} nearest (majority vote of)"
    for name, guess, what in ((f"genre_accuracy{suffix}", predicted, "generated clips"),
                              (f"genre_accuracy_gt_ceiling{suffix}", gpredicted, "ground-truth clips (ceiling)")):
        rep = rt.accuracy_report(true, guess, n_classes=len(classes))
        aggregate[name] = metric_summary(
            (guess == true).astype(float).tolist(), embedder=embedder.name, layer=layer_name(p["layer"]),
            chance=chance, k=p["k"],
            per_genre={c: a for c, a, s in zip(classes, rep["per_class"], rep["support"]) if s},
            support={c: s for c, s in zip(classes, rep["support"]) if s},
            confusion={"labels": list(classes), "rows": "true genre", "columns": "retrieved genre",
                       "matrix": rep["confusion"]},
            definition=f"share of {what} whose {how} database clip(s) ({embedder.name}, {p['distance']}) "
                       "carry the dance genre")
    fad_info = {"computed": False}
    if p["fad"]:
        fad_layer = layer_name(p["fad_layer"])
        if p["fad_layer"] != p["layer"]:
            _, pred_examples = vectors([q.pred for q, _ in queries], p["fad_layer"])
            _, gt_examples = vectors([q.gt for q, _ in queries], p["fad_layer"])
        x, y = np.concatenate(pred_examples), np.concatenate(gt_examples)
        if min(len(x), len(y)) >= 2:
            aggregate[f"fad_{embedder.name.replace('-', '_')}"] = {
                "value": fadm.frechet_audio_distance(x, y), "n": len(queries), "unit": "score",
                "higher_is_better": False, "embedder": embedder.name, "layer": fad_layer,
                "pred_examples": len(x), "gt_examples": len(y),
                "definition": f"Frechet distance between Gaussians fitted to the per-example {embedder.name} "
                              f"embeddings ({fad_layer}) of the generated and of the ground-truth clips "
                              "(float64, eigendecomposition)"}
            fad_info = {"computed": True, "layer": fad_layer, "samples": "per-example embeddings (0.96 s for vggish)",
                        "pred_examples": len(x), "gt_examples": len(y), "dim": int(x.shape[1])}
        else:
            fad_info = {"computed": False, "reason": "fewer than 2 embeddings on a side"}
    counts = np.bincount(db_labels, minlength=len(classes))
    meta = {**embedder.meta(), "layer": layer_name(p["layer"]), "k": p["k"], "vote": p["vote"] if p["k"] > 1 else None, "distance": p["distance"],
            "ties": p["ties"], "pooling": p["pooling"], "database": origin, "database_size": len(entries),
            "database_unlabelled": unlabelled, "database_per_genre": {c: int(n) for c, n in zip(classes, counts)},
            "queries": len(queries), "self_matches_excluded": int((exclude >= 0).sum()), "classes": list(classes),
            "chance": chance, "labels": options.get("labels"), "fad": fad_info, "cache": ctx.cache}
    fad_name = f"fad_{embedder.name.replace('-', '_')}"
    if fad_name in aggregate:  # bootstrap CI over clips, FAD-inf, per-clip FAD (d2m_bench.results.intervals)
        from ..results.intervals import fad_extras, per_clip_fad

        aggregate[fad_name].update(fad_extras(pred_examples, gt_examples, protocol.section("ci")))
        for (pair, _), value in zip(queries, per_clip_fad(pred_examples, gt_examples)):
            per_clip[pair.id][f"{fad_name}_clip"] = value
    return {"status": "ok", "meta": meta, "aggregate": aggregate, "per_clip": per_clip, "excluded": excluded}
