"""One set of embeddings: embedded from a folder, or read from a reference statistics file.

A statistics file (``d2m-bench stats``) is a numpy ``.npz`` read with ``allow_pickle=False``:

``mean`` (d,) float64, ``cov`` (d, d) float64 (n - 1 normalisation), ``n`` the number of
vectors, ``files`` the number of audio files, ``meta`` one JSON text (format, version, embedder,
layer, weights hash, comparable key, sample rate, how audio reached the embedder, the set's
fingerprint, where it came from) and, when written with ``--embeddings``, ``embeddings`` (n, d)
float64 with ``file_index`` (n,) int64 (which file each vector came from): what KID, FAD-inf and
the bootstrap need.

The set fingerprint is a SHA-256 over the sorted SHA-256 digests of the files' bytes: it names
the audio, not the file names or their order, so two labs can check that they hold one set.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError

FORMAT = "d2m-bench-stats"
VERSION = 1
# What makes two sets' vectors comparable: a stats file that differs from the run in any of these is refused.
MATCH = ("embedder", "layer", "weights_sha256", "pca_sha256", "sample_rate", "resample", "mono", "loading")


def fingerprint(digests) -> str:
    """SHA-256 over the sorted file digests (hex), one per line."""
    h = hashlib.sha256(b"d2m-bench set\n")
    for d in sorted(digests):
        h.update(d.encode() + b"\n")
    return h.hexdigest()


@dataclass
class EmbeddingSet:
    """One side of a set comparison.

    ``per_file``: each file's vectors of the chosen layer (finalised, float64), or None for a
    statistics file without embeddings; ``logits``: each file's label logits (classifier
    embedders, folders only) or None; ``mean`` / ``cov`` / ``n``: the Gaussian of all vectors.
    """

    source: str
    kind: str  # "folder" or "stats"
    key: dict  # the MATCH fields, the comparable key and the audio config
    fingerprint: str
    files: list = field(default_factory=list)  # file names (folders) or [] (stats files)
    n_files: int = 0
    per_file: list | None = None
    logits: list | None = None
    mean: np.ndarray | None = None
    cov: np.ndarray | None = None
    n: int = 0

    @property
    def vectors(self) -> np.ndarray | None:
        return None if self.per_file is None else np.concatenate(self.per_file)

    def summary(self) -> dict:
        """What a result records of this set."""
        return {"source": self.source, "kind": self.kind, "fingerprint": self.fingerprint, "files": self.n_files,
                "vectors": self.n, "embeddings": self.per_file is not None}


def write_stats(path, s: EmbeddingSet, *, embeddings: bool = False) -> None:
    """Write ``s`` as a statistics file at ``path`` (atomically), with its vectors when ``embeddings``."""
    from ..io.atomic import replacing

    meta = {"format": FORMAT, "version": VERSION, **s.key, "fingerprint": s.fingerprint, "source": s.source,
            "files": s.n_files, "vectors": s.n, "embeddings": bool(embeddings)}
    arrays = {"mean": np.asarray(s.mean, np.float64), "cov": np.asarray(s.cov, np.float64),
              "n": np.int64(s.n), "files": np.int64(s.n_files), "meta": np.array(json.dumps(meta, sort_keys=True))}
    if embeddings:
        arrays["embeddings"] = np.concatenate(s.per_file).astype(np.float64)
        arrays["file_index"] = np.repeat(np.arange(len(s.per_file)), [len(v) for v in s.per_file]).astype(np.int64)
    with replacing(Path(path), suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def read_stats(path) -> EmbeddingSet:
    """A statistics file as an ``EmbeddingSet``; a file that is not one is a one-line UserError."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise UserError("no such statistics file", path) from None
    except Exception as exc:  # zipfile, numpy and OS errors of a damaged or foreign file are many types
        raise UserError(f"not a d2m-bench statistics file (unreadable .npz: {exc.__class__.__name__})", path) from None
    missing = [k for k in ("mean", "cov", "n", "files", "meta") if k not in data]
    if missing:
        raise UserError(f"not a d2m-bench statistics file (no {', '.join(missing)})", path)
    try:
        meta = json.loads(str(data["meta"]))
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError("not a d2m-bench statistics file (meta is not its JSON)", path)
    if meta.get("version") != VERSION:
        raise UserError(f"statistics file version {meta.get('version')!r}; this d2m-bench reads version {VERSION}", path)
    mean, cov, n = data["mean"], data["cov"], int(data["n"])
    d = mean.shape[0] if mean.ndim == 1 else -1
    if d < 1 or cov.shape != (d, d) or mean.dtype.kind != "f" or cov.dtype.kind != "f" or n < 2:
        raise UserError(f"statistics file holds mean {mean.shape} / cov {cov.shape} / n {n}: not a (d,), (d, d), "
                        "n >= 2 Gaussian", path)
    if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        raise UserError("statistics file holds values that are not finite", path)
    per_file = None
    if "embeddings" in data:
        x, idx = data["embeddings"], data.get("file_index")
        if x.ndim != 2 or x.shape != (n, d) or idx is None or idx.shape != (n,) or not np.isfinite(x).all():
            raise UserError(f"statistics file embeddings {x.shape} do not match n = {n}, d = {d}", path)
        per_file = [x[idx == i].astype(np.float64) for i in range(int(data["files"])) if (idx == i).any()]
    key = {k: meta.get(k) for k in (*MATCH, "comparable_key", "audio")}
    return EmbeddingSet(source=str(path), kind="stats", key=key, fingerprint=str(meta.get("fingerprint")),
                        n_files=int(data["files"]), per_file=per_file, mean=mean.astype(np.float64),
                        cov=cov.astype(np.float64), n=n)


def check_match(stats: EmbeddingSet, key: dict) -> None:
    """Refuse (one line) a statistics file made with another embedder, weights, layer or audio settings."""
    for k in MATCH:
        if stats.key.get(k) != key.get(k):
            raise UserError(f"statistics file made with {k} = {stats.key.get(k)!r}, this run uses {key.get(k)!r}: "
                            "its vectors are not comparable (d2m-bench stats makes one for this setting)", stats.source)
