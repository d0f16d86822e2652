"""Per-file result cache (onsets, embeddings), keyed by file content + configuration.

Layout: ``<root>/<namespace>/<kk>/<key>.npy`` where ``key`` is a SHA-256 over the file's
content digest and a canonical JSON of every parameter that affects the stored array.
Writes go to a temporary file in the same directory followed by ``os.replace``, which is
atomic on POSIX: two processes writing the same entry at once both leave a valid file.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from .atomic import replacing


def default_root() -> Path:
    env = os.environ.get("D2M_BENCH_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "d2m-bench"


def file_digest(path, chunk=1 << 20) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_digest(config: dict) -> str:
    """Stable hash of a JSON-serialisable configuration (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class FileCache:
    """Array store for one namespace (e.g. ``onsets`` or ``vggish``)."""

    def __init__(self, namespace: str, root=None, enabled: bool = True):
        self.dir = Path(root or default_root()) / namespace
        self.enabled = enabled

    def key(self, content_digest: str, config: dict) -> str:
        return config_digest({"content": content_digest, "config": config})

    def check_writable(self) -> str | None:
        """None when entries can be stored here, else why not (one line, for a warning).

        Tried for real (a throw-away file), since permission bits say nothing for root and
        nothing about a read-only mount or a file sitting where the directory should be.
        """
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.dir):
                pass
        except OSError as exc:
            return f"{exc.strerror or exc.__class__.__name__} ({exc.filename or self.dir})"
        return None

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, key: str):
        if not self.enabled:
            return None
        path = self._path(key)
        try:
            return np.load(path, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError, EOFError):
            # A corrupt entry (disk full, killed writer on a non-POSIX fs) is a miss, not an error.
            return None

    def put(self, key: str, array) -> None:
        if not self.enabled:
            return
        with replacing(self._path(key), suffix=".npy") as tmp:
            np.save(tmp, np.asarray(array), allow_pickle=False)


def cache_info(root=None) -> dict:
    """Entry count and size in bytes per namespace."""
    root = Path(root or default_root())
    info = {}
    if root.is_dir():
        for ns in sorted(p for p in root.iterdir() if p.is_dir()):
            files = [f for f in ns.rglob("*.npy") if not f.name.startswith(".tmp-")]
            info[ns.name] = {"entries": len(files), "bytes": sum(f.stat().st_size for f in files)}
    return info


def cache_clear(root=None, namespace=None) -> int:
    """Delete a namespace (or everything); returns the number of entries removed."""
    root = Path(root or default_root())
    info = cache_info(root)
    names = [namespace] if namespace else list(info)
    removed = 0
    for name in names:
        if name in info:
            removed += info[name]["entries"]
            shutil.rmtree(root / name, ignore_errors=True)
    return removed
