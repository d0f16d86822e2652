"""Eval's worker pass: every gt/pred pair once, in parallel, each file decoded at most once.

Each enabled section that has per-pair work (``pair_step`` / ``run_pair``: onsets for the beat
metrics, levels for the sanity checks) runs on the same `FileSource` of each file, which decodes
on first use and keeps the decoded samples and every mix/rate asked of them; the content hash
is computed once too. What a section computes per file is cached by content + configuration
(``d2m_bench.io.cache``), so a second run decodes nothing.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..io.cache import FileCache, default_root

_CACHES = {}  # one FileCache per process, namespace and root: a write failure switches it off once


class NeedsDecode(Exception):
    """A probing `FileSource` was asked for samples, or for facts its memo does not hold (the
    pair is not all cached: a worker does it)."""


class FileSource:
    """One file's bytes, decoded at most once and only when a section needs samples.

    Its SHA-256 and declared length come from ``memo`` (a `d2m_bench.io.filefacts.FactsMemo`)
    when the file is unchanged since a run that read it; facts computed here are noted in it.
    A probe (``may_decode=False``, the parent's pass over pairs that may be all cached) neither
    decodes nor reads a file the memo does not know: it raises `NeedsDecode` instead.
    """

    def __init__(self, path, *, may_decode: bool = True, facts: tuple | None = None, memo=None):
        self.path = Path(path)
        self.may_decode = may_decode
        self.memo = memo
        self._facts = facts  # (sha256, declared seconds or None) once known
        self._seconds = None  # (declared seconds,) once read from the header
        self._state = None
        self._decoded = None
        self._prepared = {}
        self.noted = None  # (path, state, sha256, seconds) when this object added them to the memo

    def _recall(self) -> None:
        from ..io.filefacts import file_state

        if self._facts is None and self._state is None and self.memo is not None and self.memo.enabled:
            try:
                self._state = file_state(self.path)
            except OSError:
                self._state = False  # unreadable: hashing says why, in its own words
            if self._state:
                self._facts = self.memo.recall(self.path, self._state)
        if self._facts is None and not self.may_decode:
            raise NeedsDecode(self.path)

    def declared_seconds(self) -> float | None:
        """The length the file's header declares (``io.audio.declared_seconds``)."""
        from ..io.audio import declared_seconds

        self._recall()
        if self._facts is not None:
            return self._facts[1]
        if self._seconds is None:
            self._seconds = (declared_seconds(self.path),)
        return self._seconds[0]

    def digest(self) -> str:
        from ..io.audio import media_digest

        self._recall()
        if self._facts is None:
            seconds = self.declared_seconds()
            self._facts = (media_digest(self.path), seconds)
            if self._state and self.memo.note(self.path, self._state, *self._facts):
                self.noted = (str(self.path), self._state, *self._facts)
        return self._facts[0]

    def decoded(self):
        """``(samples (channels, frames), native rate)``."""
        from ..io.audio import decode_audio

        if self._decoded is None:
            if not self.may_decode:
                raise NeedsDecode(self.path)
            self._decoded = decode_audio(self.path)
        return self._decoded

    def prepared(self, sr, *, mix="mean", res_type="soxr_hq"):
        """``(y, sr, AudioInfo)`` as ``read_audio(path, sr, mix=mix, res_type=res_type)`` gives them."""
        from ..io.audio import prepare_audio

        key = (sr, mix, res_type)
        if key not in self._prepared:
            self._prepared[key] = prepare_audio(*self.decoded(), sr, mix=mix, res_type=res_type)
        return self._prepared[key]


def cache_for(namespace: str, root: str, enabled: bool):
    """This process's cache of ``namespace`` (None when caching is off)."""
    if not enabled:
        return None
    if (namespace, root) not in _CACHES:
        _CACHES[(namespace, root)] = FileCache(namespace, root)
    return _CACHES[(namespace, root)]


def usable_cache(cache: bool):
    """(cache on?, warning or None): an unwritable cache directory is warned about once and
    the run goes on without the cache, instead of failing in every worker."""
    if not cache:
        return False, None
    problem = FileCache("events", default_root()).check_writable()
    if problem:
        return False, f"cache directory not writable, running without the cache: {problem}"
    return True, None


_MEMO = None  # this run's FactsMemo: set by run_pairs before the pool forks, so workers inherit it


def _run_job(job, *, may_decode: bool = True):
    """``({section name: run_pair output}, [facts noted for the memo])`` of one pair."""
    from .. import sections

    pair, steps, facts = job
    files = {role: FileSource(getattr(pair, role), may_decode=may_decode, facts=facts.get(role), memo=_MEMO)
             for role in ("gt", "pred")}
    try:
        out = {name: sections.section(name).run_pair(pair, files, config) for name, config in steps}
    except NeedsDecode:
        facts.update({role: f._facts for role, f in files.items() if f._facts is not None})
        raise
    return out, [f.noted for f in files.values() if f.noted is not None]


def _single_threaded_blas():
    """Parallelism is across processes: a multi-threaded BLAS on a 128x1025 by 1025x87 product
    only adds contention (it halved throughput on 2 cores). Onset times are unchanged (tested)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def run_pairs(pairs, steps, *, workers: int, progress: bool, cache_root: str | None = None) -> list[dict]:
    """``[{section name: run_pair output}]`` per pair, in the order of ``pairs``.

    ``steps``: ``[(section name, picklable config)]``; ``cache_root``: the cache whose ``files``
    namespace remembers each file's hash (`d2m_bench.io.filefacts`; None: caching is off).
    Pairs whose every section is served from the cache are done here, without decoding or
    hashing anything or starting a process; only the others go to the workers. Before those,
    sections with a ``warm_up(config)`` (librosa's numba kernels) run it here, so that forked
    workers inherit the compiled code.
    """
    global _MEMO
    from ..io.filefacts import FactsMemo

    _CACHES.clear()  # forked workers inherit this process's caches: start them enabled
    _MEMO = FactsMemo(FileCache("files", cache_root) if cache_root is not None else None)
    try:
        return _run_all(pairs, steps, workers=workers, progress=progress)
    finally:
        if _MEMO.enabled:
            _MEMO.save()
        _MEMO = None


def _run_all(pairs, steps, *, workers: int, progress: bool) -> list[dict]:
    from threadpoolctl import threadpool_limits

    from .. import sections
    from ..progress import progress_bar

    out, todo = [None] * len(pairs), []
    for i, pair in enumerate(pairs):
        job = (pair, steps, {})
        try:
            out[i] = _run_job(job, may_decode=False)[0]
        except NeedsDecode:
            todo.append((i, job))
    if not todo:
        return out
    for name, config in steps:
        warm_up = getattr(sections.section(name), "warm_up", None)
        if warm_up is not None:
            warm_up(config)
    jobs = [job for _, job in todo]
    bar = dict(total=len(jobs), desc="features", unit="pair", disable=not progress, leave=False)
    if workers <= 1 or len(jobs) < 4:
        with threadpool_limits(1):
            done = [_run_job(j) for j in progress_bar(jobs, **bar)]
    else:
        import multiprocessing as mp

        chunk = max(1, min(32, len(jobs) // (workers * 4)))
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("fork"),
                                 initializer=_single_threaded_blas) as pool:
            done = list(progress_bar(pool.map(_run_job, jobs, chunksize=chunk), **bar))
    for (i, _), (result, noted) in zip(todo, done):
        out[i] = result
        _MEMO.merge(noted)
    return out
