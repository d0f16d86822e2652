"""What eval learns of an input file before decoding it (its SHA-256 and the length its header
declares), remembered per file *state*, so that a second run over unchanged files reads
neither their bytes nor their headers.

The state is ``(device, inode, size, mtime_ns, ctime_ns)`` from one ``stat``, taken before the
file is read: any write to the file, a rename over it, or a ``touch`` that resets its mtime
moves its ctime, which no user can set back, so a changed file never matches a remembered
state. As git does for its index, a file whose mtime or ctime is within ``RACY_SECONDS`` of
the moment it was read is not remembered: a write in the same clock tick as the read could
otherwise leave the state unchanged. The content hash stays the key of everything computed
from the file; this only spares recomputing it.

Storage: one entry per folder of inputs in the cache's ``files`` namespace (the integrity
check of every entry), holding a JSON object ``{file name: [dev, ino, size, mtime_ns,
ctime_ns, sha256, declared seconds or null]}``, so a cached run over a folder of 1,000 clips
reads one entry instead of 1,000. Two runs saving the same folder at once keep the facts of
one of them: the other's are recomputed next time, never wrong.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

RACY_SECONDS = 2.0
FACTS_SCHEMA = 2
_CONFIG = {"facts": FACTS_SCHEMA}  # one object, so the cache computes its canonical JSON once


def file_state(path) -> tuple:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FactsMemo:
    """The remembered facts of the input folders of one run, loaded per folder on first use."""

    def __init__(self, cache):
        self.cache = cache  # a FileCache of the "files" namespace, or None (caching off)
        self._folders = {}  # folder -> {name: [*state, sha256, seconds]}
        self._dirty = set()

    @property
    def enabled(self) -> bool:
        return self.cache is not None and self.cache.enabled

    def _key(self, folder: str) -> str:
        return self.cache.key("folder:" + folder, _CONFIG)

    def _folder(self, folder: str) -> dict:
        if folder not in self._folders:
            self._folders[folder] = self._load(folder)
        return self._folders[folder]

    def _load(self, folder: str) -> dict:
        hit = self.cache.get(self._key(folder), ndim=1)
        if hit is None or hit.dtype != np.uint8:
            return {}
        try:
            known = json.loads(hit.tobytes())
        except ValueError:
            return {}
        return {name: facts for name, facts in known.items() if _well_formed(facts)} if isinstance(known, dict) else {}

    def recall(self, path, state: tuple) -> tuple[str, float | None] | None:
        """``(sha256, declared seconds or None)`` remembered for ``path`` in ``state``, or None."""
        if not self.enabled:
            return None
        folder, name = os.path.split(os.path.abspath(path))
        facts = self._folder(folder).get(name)
        if facts is None or tuple(facts[:5]) != state:
            return None
        return facts[5], facts[6]

    def note(self, path, state: tuple, digest: str, seconds: float | None, *, now: float | None = None) -> bool:
        """Remember the facts of ``path`` read in ``state`` (saved by `save`), unless that state
        is too recent to trust. True when noted."""
        if not self.enabled:
            return False
        if (now or time.time()) - max(state[3], state[4]) / 1e9 < RACY_SECONDS:
            return False
        folder, name = os.path.split(os.path.abspath(path))
        self._folder(folder)[name] = [*state, digest, seconds]
        self._dirty.add(folder)
        return True

    def merge(self, noted: list) -> None:
        """Facts noted elsewhere (a worker process): ``[(path, state, sha256, seconds)]``."""
        for path, state, digest, seconds in noted:
            self.note(path, state, digest, seconds)

    def save(self) -> None:
        """Write the folders that gained facts, over what another run saved meanwhile."""
        for folder in sorted(self._dirty):
            ours = self._folders[folder]
            merged = {**self._load(folder), **ours}
            blob = json.dumps(merged, sort_keys=True, separators=(",", ":")).encode()
            try:
                self.cache.put(self._key(folder), np.frombuffer(blob, np.uint8))
            except OSError:
                self.cache.enabled = False  # full disk or a folder gone read-only: go on without
                break
        self._dirty.clear()


def _well_formed(facts) -> bool:
    return (isinstance(facts, list) and len(facts) == 7 and all(isinstance(v, int) for v in facts[:5])
            and isinstance(facts[5], str) and len(facts[5]) == 64
            and (facts[6] is None or (isinstance(facts[6], (int, float)) and 0 <= facts[6] < float("inf"))))
