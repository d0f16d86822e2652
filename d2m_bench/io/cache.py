"""Per-file result cache (onsets, embeddings), keyed by file content + configuration.

Layout: ``<root>/<namespace>/<kk>/<key>.npz`` where ``key`` is a SHA-256 over the file's
content digest and a canonical JSON of every parameter that affects the stored array.
Writes go to a temporary file in the same directory followed by ``os.replace``, which is
atomic on POSIX: two processes writing the same entry at once both leave a valid file.

Ownership: every folder the cache creates (the root, when it did not exist or was empty,
and each namespace) gets a ``CACHEDIR.TAG`` (the Cache Directory Tagging convention, so
backup tools skip it too) that names d2m-bench. ``cache_clear`` deletes only entry files
of the cache's own name pattern inside tagged namespaces of a tagged root, so a cache root
pointed at ``$HOME`` or a mistyped ``--root`` loses nothing that the cache did not write.

Integrity: an entry stores its array beside a SHA-256 over (key, dtype, shape, bytes). An
entry edited by hand, truncated, or copied under another key's name fails that check and is
treated as a miss (with a warning), as is one whose values are not finite numbers. This
catches accidents and naive forgeries; it is not a signature: whoever can write the cache
folder can also compute the check.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .atomic import replacing, write_text

TAG_NAME = "CACHEDIR.TAG"
TAG_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"  # fixed by the CACHEDIR.TAG convention
TAG_TEXT = (f"{TAG_SIGNATURE}\n# This file is a cache directory tag created by d2m-bench.\n"
            "# `d2m-bench cache clear` only deletes entries inside folders that carry it.\n")
# <kk>/<64 hex>.npz (current) or .npy (entries written before the integrity check)
_ENTRY = re.compile(r"[0-9a-f]{64}\.(npz|npy)")
_TEMP = re.compile(r"\.tmp-[A-Za-z0-9_]+\.(npz|npy)")


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


def is_tagged(folder) -> bool:
    """True when ``folder`` carries a CACHEDIR.TAG written by d2m-bench."""
    tag = Path(folder) / TAG_NAME
    try:
        if tag.is_symlink() or not tag.is_file():
            return False
        with open(tag, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head.startswith(TAG_SIGNATURE) and "d2m-bench" in head


def _make_own_dir(folder: Path) -> None:
    """Create ``folder`` and tag it, or tag it when it exists but is empty; an existing
    folder with content is used as it is and never tagged (it may be the user's)."""
    try:
        folder.mkdir(parents=True)
        fresh = True
    except FileExistsError:
        fresh = folder.is_dir() and not any(folder.iterdir())
    if fresh and not is_tagged(folder):
        write_text(folder / TAG_NAME, TAG_TEXT)


def entry_check(key: str, array: np.ndarray) -> bytes:
    h = hashlib.sha256()
    h.update(f"d2m-bench cache entry\0{key}\0{array.dtype.str}\0{array.shape}\0".encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.digest()


class FileCache:
    """Array store for one namespace (e.g. ``onsets`` or ``vggish``)."""

    def __init__(self, namespace: str, root=None, enabled: bool = True):
        self.root = Path(root or default_root())
        self.dir = self.root / namespace
        self.enabled = enabled
        self.rejected = 0  # entries found but not used (failed integrity or value checks)

    def key(self, content_digest: str, config: dict) -> str:
        return config_digest({"content": content_digest, "config": config})

    def _ensure_dirs(self) -> None:
        _make_own_dir(self.root)
        _make_own_dir(self.dir)

    def check_writable(self) -> str | None:
        """None when entries can be stored here, else why not (one line, for a warning).

        Tried for real (a throw-away file), since permission bits say nothing for root and
        nothing about a read-only mount or a file sitting where the directory should be.
        """
        try:
            self._ensure_dirs()
            with tempfile.TemporaryFile(dir=self.dir):
                pass
        except OSError as exc:
            return f"{exc.strerror or exc.__class__.__name__} ({exc.filename or self.dir})"
        return None

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npz"

    def _reject(self, path, why: str) -> None:
        self.rejected += 1
        if self.rejected == 1:  # once per cache object: a tampered folder must not flood stderr
            warnings.warn(f"{path}: cache entry not used ({why}); recomputing", CacheWarning, stacklevel=3)

    def get(self, key: str, *, ndim: int | None = None):
        """The stored array, or None on a miss.

        Missing, unreadable, tampered (integrity check), non-numeric or non-finite entries,
        and entries of another ``ndim`` when one is given, are misses: the caller recomputes
        and ``put`` replaces the entry.
        """
        if not self.enabled:
            return None
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as npz:
                array, check = npz["data"], npz["check"]
        except FileNotFoundError:
            return None
        except Exception as exc:  # zipfile, numpy and OS errors of a damaged entry are many types
            self._reject(path, f"unreadable: {exc.__class__.__name__}")
            return None
        if check.dtype != np.uint8 or check.tobytes() != entry_check(key, array):
            self._reject(path, "integrity check failed: edited, truncated or copied from another key")
            return None
        if array.dtype.kind not in "biuf" or not np.isfinite(array).all():
            self._reject(path, f"holds {array.dtype} values that are not all finite numbers")
            return None
        if ndim is not None and array.ndim != ndim:
            self._reject(path, f"{array.ndim}-d array where {ndim}-d is stored")
            return None
        return array

    def put(self, key: str, array) -> None:
        if not self.enabled:
            return
        array = np.asarray(array)
        self._ensure_dirs()
        with replacing(self._path(key), suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, data=array, check=np.frombuffer(entry_check(key, array), np.uint8))


class CacheWarning(UserWarning):
    """A cache entry was not used (damaged or tampered): shown even where other warnings are not."""


def _entries(ns: Path):
    """Files of ``ns`` that the cache wrote: <kk>/<key>.npz|.npy and its own temporaries."""
    for sub in ns.iterdir():
        if sub.is_symlink() or not sub.is_dir() or not re.fullmatch(r"[0-9a-f]{2}", sub.name):
            continue
        for f in sub.iterdir():
            if f.is_symlink() or not f.is_file():
                continue
            if (_ENTRY.fullmatch(f.name) and f.name.startswith(sub.name)) or _TEMP.fullmatch(f.name):
                yield f


def _namespaces(root: Path):
    return [p for p in sorted(root.iterdir()) if p.is_dir() and not p.is_symlink() and is_tagged(p)]


def cache_info(root=None) -> dict:
    """Entry count and size in bytes per namespace (tagged namespaces of the root only)."""
    root = Path(root or default_root())
    info = {}
    if root.is_dir():
        for ns in _namespaces(root):
            files = [f for f in _entries(ns) if not f.name.startswith(".tmp-")]
            info[ns.name] = {"entries": len(files), "bytes": sum(f.stat().st_size for f in files)}
    return info


def cache_clear(root=None, namespace=None) -> dict:
    """Delete the entries of a namespace (or of every namespace) that the cache wrote.

    Refuses (UserError) a root without d2m-bench's CACHEDIR.TAG. Inside a tagged namespace
    only entry files of the cache's name pattern are deleted, then folders left empty; any
    other file stays, and is counted. Returns ``{"removed", "kept", "namespaces"}``.
    """
    from ..errors import UserError

    root = Path(root or default_root())
    if not root.exists():
        return {"removed": 0, "kept": 0, "namespaces": []}  # nothing cached yet
    if not root.is_dir():
        raise UserError("not a cache folder (a file)", root)
    if not is_tagged(root):
        raise UserError(f"not a d2m-bench cache (no {TAG_NAME} written by d2m-bench); refusing to delete "
                        "anything here. A cache made by an older d2m-bench has no tag: delete it by hand", root)
    spaces = _namespaces(root)
    if namespace is not None:
        if "/" in namespace or namespace in ("", ".", "..") or os.sep in namespace:
            raise UserError(f"'{namespace}' is not a cache namespace name", root)
        spaces = [ns for ns in spaces if ns.name == namespace]
        if not spaces:
            known = ", ".join(ns.name for ns in _namespaces(root)) or "none"
            raise UserError(f"no cache namespace '{namespace}' here (namespaces: {known})", root)
    removed = kept = 0
    for ns in spaces:
        for f in list(_entries(ns)):
            f.unlink(missing_ok=True)
            removed += not f.name.startswith(".tmp-")
        for sub in ns.iterdir():
            if sub.is_dir() and not sub.is_symlink() and re.fullmatch(r"[0-9a-f]{2}", sub.name):
                try:
                    sub.rmdir()
                except OSError:
                    pass  # not empty: holds files the cache did not write
        others = [p for p in ns.rglob("*") if p.name != TAG_NAME and not p.is_dir()]
        kept += len(others)
        if not others and not any(p.is_dir() for p in ns.iterdir()):
            (ns / TAG_NAME).unlink(missing_ok=True)
            ns.rmdir()
    return {"removed": removed, "kept": kept, "namespaces": [ns.name for ns in spaces]}
