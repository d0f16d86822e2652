"""Embedder registry and the cached file -> per-example embeddings step.

An embedder has ``name``, ``sample_rate``, ``dim``, ``weights_sha256``, ``cache_config()``
(every setting that changes its output), ``meta()``, ``embed_waveforms(list) -> list of
(n_examples, dim) float32`` and ``finalize(vectors)`` (the protocol's post-processing).
Cached entries are keyed by the file's SHA-256 plus ``cache_config()`` (which includes the
weights hash), in the FileCache namespace named after the embedder.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError

EMBEDDERS = ("vggish", "mfcc-chroma")


def audio_config() -> dict:
    """How files reach an embedder (``load_audio``: channel mean, librosa.resample with
    soxr_hq). The librosa and soxr versions are part of it because an upgrade of either may
    change the resampled samples, hence the embeddings: cached entries must not survive it."""
    import librosa
    import soxr

    return {"resample": "soxr_hq", "mono": "mean", "librosa": librosa.__version__, "soxr": soxr.__version__}


def resolve_embedder(name: str, *, vggish_weights=None, postprocess=False) -> dict:
    """The files an embedder needs, found without loading anything: ``{"weights", "pca"}``
    (paths or None). Unknown names, bad settings and missing files raise the UserError that
    building the embedder would raise, so a run can fail before any other work."""
    if name == "vggish":
        from .weights import resolve, resolve_pca

        weights = resolve("vggish", vggish_weights)
        return {"weights": weights, "pca": resolve_pca(weights) if postprocess else None}
    if name == "mfcc-chroma":
        if postprocess:
            raise UserError("genre.postprocess applies to vggish only (mfcc-chroma has no PCA)")
        return {"weights": None, "pca": None}
    raise UserError(f"unknown embedder '{name}' (known: {', '.join(EMBEDDERS)})")


def get_embedder(name: str, *, vggish_weights=None, postprocess=False, batch_size=128):
    files = resolve_embedder(name, vggish_weights=vggish_weights, postprocess=postprocess)
    if name == "vggish":
        from .vggish import VGGishEmbedder

        return VGGishEmbedder(files["weights"], pca=files["pca"], postprocess=postprocess, batch_size=batch_size)
    from .handcrafted import MfccChromaEmbedder

    return MfccChromaEmbedder()


def embed_files(paths, embedder, *, cache=None, progress=False, files_per_batch=32) -> dict:
    """``{path: (n_examples, dim) float32}`` for each distinct path, from the cache when possible.

    Files that miss the cache are decoded at the embedder's rate and embedded in groups
    (their examples share network batches), then stored.
    """
    from ..progress import progress_bar

    from ..audio import load_audio, media_digest

    config = embedder.cache_config()
    out, todo = {}, []
    for path in dict.fromkeys(map(str, paths)):
        key = cache.key(media_digest(path), config) if cache is not None else None
        hit = cache.get(key, ndim=2) if cache is not None else None
        if hit is not None and hit.ndim == 2 and hit.shape[1] == embedder.dim:
            out[path] = hit
        else:
            todo.append((path, key))
    bar = progress_bar(total=len(todo), desc=f"embed ({embedder.name})", unit="file", disable=not progress, leave=False)
    for start in range(0, len(todo), files_per_batch):
        group = todo[start:start + files_per_batch]
        waves = [load_audio(p, embedder.sample_rate)[0] for p, _ in group]
        for (path, key), emb in zip(group, embedder.embed_waveforms(waves)):
            out[path] = emb
            if cache is not None:
                cache.put(key, emb)
        bar.update(len(group))
    bar.close()
    return out


def clip_vectors(per_example: list, *, pooling="mean") -> np.ndarray:
    """(n_clips, dim) float64: each clip's example embeddings pooled (mean)."""
    if pooling != "mean":
        raise UserError(f"unknown genre.pooling '{pooling}' (mean)")
    return np.stack([np.asarray(e, dtype=np.float64).mean(axis=0) for e in per_example])
