"""Per-file result cache (onsets, embeddings), keyed by file content + configuration.

Layout: ``<root>/<namespace>/<kk>/<key>.entry`` where ``key`` is a SHA-256 over the file's
content digest and a canonical JSON of every parameter that affects the stored array.
Writes go to a temporary file in the same directory followed by ``os.replace``, which is
atomic on POSIX: two processes writing the same entry at once both leave a valid file.

An entry is one flat file, read with one ``read`` (written by hand for measured speed: the
``.npz`` zip container it replaced cost 0.3 ms a read and 0.7 ms a write, most of a cached
eval's time)::

    b"D2MCACHE"                 8 bytes
    check                       32 bytes, SHA-256 of b"d2m-bench cache entry\0" + key + b"\0" + the rest
    header length               4 bytes, little-endian
    header                      ASCII JSON {"dtype": numpy dtype string, "shape": [...]}
    payload                     the array's bytes in C order

Ownership: every folder the cache creates (the root, when it did not exist or was empty,
and each namespace) gets a ``CACHEDIR.TAG`` (the Cache Directory Tagging convention, so
backup tools skip it too) that names d2m-bench. ``cache_clear`` deletes only entry files
of the cache's own name pattern inside tagged namespaces of a tagged root, so a cache root
pointed at ``$HOME`` or a mistyped ``--root`` loses nothing that the cache did not write.

Integrity: the check covers the key, the header and the payload. An entry edited by hand,
truncated, or copied under another key's name fails it and is treated as a miss (with a
warning), as is one whose values are not finite numbers. This catches accidents and naive
forgeries; it is not a signature: whoever can write the cache folder can also compute the
check. Entries of earlier layouts (``.npz``, ``.npy``) are never read (misses) and
``cache clear`` still deletes them.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from .atomic import write_bytes, write_text

TAG_NAME = "CACHEDIR.TAG"
TAG_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"  # fixed by the CACHEDIR.TAG convention
TAG_TEXT = (f"{TAG_SIGNATURE}\n# This file is a cache directory tag created by d2m-bench.\n"
            "# `d2m-bench cache clear` only deletes entries inside folders that carry it.\n")
# <kk>/<64 hex>.entry (current), .npz or .npy (earlier layouts, cleared but never read)
_ENTRY = re.compile(r"[0-9a-f]{64}\.(entry|npz|npy)")
_TEMP = re.compile(r"\.tmp-[A-Za-z0-9_]+\.(entry|npz|npy)")
SUFFIX = ".entry"
_PLAIN = re.compile(r"[A-Za-z0-9:._-]*")  # strings JSON writes as they are, between quotes
MAGIC = b"D2MCACHE"
_CHECKED = len(MAGIC) + 32  # the check covers what follows it


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


def entry_check(key: str, body: bytes) -> bytes:
    """The SHA-256 an entry of ``key`` stores before ``body`` (header length, header, payload)."""
    h = hashlib.sha256(b"d2m-bench cache entry\0" + key.encode() + b"\0")
    h.update(body)
    return h.digest()


def encode_entry(key: str, array: np.ndarray) -> bytes:
    """The bytes of an entry holding ``array`` under ``key``."""
    array = np.ascontiguousarray(array)
    if array.dtype.hasobject:
        raise TypeError("the cache stores arrays of numbers, not Python objects")
    header = json.dumps({"dtype": array.dtype.str, "shape": list(array.shape)}).encode()
    body = len(header).to_bytes(4, "little") + header + array.tobytes()
    return MAGIC + entry_check(key, body) + body


def decode_entry(key: str, blob: bytes) -> np.ndarray:
    """The array of an entry; ValueError (why, in words) when it is not a whole entry of ``key``."""
    if blob[:len(MAGIC)] != MAGIC or len(blob) < _CHECKED + 4:
        raise ValueError("unreadable: not a d2m-bench cache entry")
    if entry_check(key, memoryview(blob)[_CHECKED:]) != blob[len(MAGIC):_CHECKED]:
        raise ValueError("integrity check failed: edited, truncated or copied from another key")
    n = int.from_bytes(blob[_CHECKED:_CHECKED + 4], "little")
    try:  # a header that passed the check was written by encode_entry, unless forged
        dtype, shape = _header(bytes(blob[_CHECKED + 4:_CHECKED + 4 + n]))
        # bytearray: the caller gets a writable array, as np.load gave
        return np.frombuffer(bytearray(blob[_CHECKED + 4 + n:]), dtype=dtype).reshape(shape)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"unreadable: {exc.__class__.__name__}") from None


def _read_whole(path: str) -> bytes:
    """A file's bytes through unbuffered ``os.read`` (a third of ``open().read()``'s time on
    the small entries a cached eval reads by thousands)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@lru_cache(maxsize=256)
def _header(raw: bytes) -> tuple[np.dtype, tuple]:
    """(dtype, shape) of an entry header; few distinct headers occur in a run (one per length)."""
    header = json.loads(raw)
    dtype, shape = np.dtype(header["dtype"]), tuple(int(d) for d in header["shape"])
    if dtype.hasobject:
        raise TypeError("object array")
    return dtype, shape


class FileCache:
    """Array store for one namespace (e.g. ``onsets`` or ``vggish``)."""

    def __init__(self, namespace: str, root=None, enabled: bool = True):
        self.root = Path(root or default_root())
        self.dir = self.root / namespace
        self.enabled = enabled
        self.rejected = 0  # entries found but not used (failed integrity or value checks)
        self._configs = {}  # id(config) -> (config, canonical JSON): a worker keys thousands of files by one config
        self._made = set()  # folders this object has created or seen, so a put costs no mkdir
        self._dir = str(self.dir)

    def key(self, content_digest: str, config: dict) -> str:
        """``config_digest({"content": content_digest, "config": config})``, with the config's
        canonical JSON computed once per config object."""
        known = self._configs.get(id(config))
        if known is None or known[0] is not config:
            known = self._configs[id(config)] = (config, json.dumps(config, sort_keys=True, separators=(",", ":"),
                                                                    default=str))
        # the same bytes as config_digest's canonical JSON: "config" sorts before "content"
        content = f'"{content_digest}"' if _PLAIN.fullmatch(content_digest) else json.dumps(content_digest)
        return hashlib.sha256(('{"config":' + known[1] + ',"content":' + content + "}").encode()).hexdigest()

    def _ensure_dirs(self, sub: Path | None = None) -> None:
        if self.dir not in self._made:
            _make_own_dir(self.root)
            _make_own_dir(self.dir)
            self._made.add(self.dir)
        if sub is not None and sub not in self._made:
            sub.mkdir(exist_ok=True)
            self._made.add(sub)

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
        return Path(self._path_str(key))

    def _path_str(self, key: str) -> str:  # no pathlib: a cached eval reads thousands of entries
        return f"{self._dir}/{key[:2]}/{key}{SUFFIX}"

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
        path = self._path_str(key)
        try:
            blob = _read_whole(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._reject(path, f"unreadable: {exc.strerror or exc.__class__.__name__}")
            return None
        try:
            array = decode_entry(key, blob)
        except ValueError as exc:
            self._reject(path, str(exc))
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
        blob = encode_entry(key, np.asarray(array))
        path = self._path(key)
        self._ensure_dirs(path.parent)
        try:
            self._write(path, blob)
        except FileNotFoundError:  # the folders were removed under us (`cache clear` elsewhere)
            self._made.clear()
            self._ensure_dirs(path.parent)
            self._write(path, blob)

    @staticmethod
    def _write(path: Path, blob: bytes) -> None:
        write_bytes(path, blob, make_parents=False)  # folders are made by _ensure_dirs, tagged


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
