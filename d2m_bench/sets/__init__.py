"""Unpaired embedding sets: set-level metrics between a background and an evaluation set
(``score_sets``, ``d2m-bench fad``) and reference statistics files (``make_stats``,
``d2m-bench stats``). docs/sets.md describes both."""
from __future__ import annotations

from .score import score_sets
from .stats import EmbeddingSet, read_stats, write_stats

__all__ = ["EmbeddingSet", "make_stats", "read_stats", "score_sets", "write_stats"]


def make_stats(folder, out, *, embedder: str = "vggish", layer: str | None = None, options: dict | None = None,
               embeddings: bool = False, cache: bool = True, progress: bool = False, loading: dict | None = None) -> dict:
    """Embed ``folder`` and write its statistics file to ``out`` (with its vectors when
    ``embeddings``: what KID, FAD-inf and the bootstrap of a later comparison need). Returns the
    set's summary and key. ``loading``: as for ``score_sets`` (recorded in the file, checked when
    it is used). Under ``torchrun`` every rank embeds its share; rank 0 writes."""
    from ..distributed import is_writer
    from .score import embed_folder, load_embedder

    emb, layer = load_embedder(embedder, layer, dict(options or {}))
    s = embed_folder(folder, emb, layer, role="stats", cache=cache, progress=progress, loading=loading)
    if is_writer():
        write_stats(out, s, embeddings=embeddings)
    return {**s.summary(), **{k: v for k, v in s.key.items() if k != "audio"}, "out": str(out),
            "device": str(getattr(emb, "device", "cpu"))}
