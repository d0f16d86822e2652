"""Files that appear whole or not at all.

Every result, dataset file, cache entry, checkpoint and download is written under a temporary
name in the target's own folder (same filesystem, so the final rename is atomic) and renamed
over the target only once the writer has finished. Readers never see half a file, a killed
writer leaves nothing under the real name, and two writers of one cache entry simply race to
the same complete content.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path


def _open_temporary(folder: Path, suffix: str, make_parents: bool = True) -> tuple[int, Path]:
    """``(fd open for writing, path)`` of a new, empty file in ``folder`` (created, with its
    parents, when missing). Mode 0666 lets the kernel apply the umask: the finished file gets
    the mode an ordinary ``open()`` gives, without reading the umask (``mkstemp``'s 0600 needed
    a chmod and a read of /proc per file, a quarter of the cost of a cache entry)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = folder / f".tmp-{secrets.token_hex(8)}{suffix}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except FileNotFoundError:
            if not make_parents:
                raise
            folder.mkdir(parents=True, exist_ok=True)
    raise FileExistsError(f"no free temporary name in {folder}")


@contextmanager
def replacing(path, *, suffix: str | None = None):
    """Yield a temporary path beside ``path``; on a clean exit it becomes ``path``.

    The temporary name keeps ``path``'s suffix (or ``suffix``) because writers such as
    ``np.save``, soundfile and PyAV choose the format from it. The finished file has the mode
    an ordinary ``open()`` would have given it, so datasets, caches and results stay readable
    by the other users they are shared with.
    """
    path = Path(path)
    fd, tmp = _open_temporary(path.parent, path.suffix if suffix is None else suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path, data: bytes, *, make_parents: bool = True) -> None:
    """Write ``data`` to ``path`` atomically: one create, one write, one rename (what a cache
    entry costs). ``make_parents=False``: FileNotFoundError when the folder is missing."""
    path = Path(path)
    fd, tmp = _open_temporary(path.parent, path.suffix, make_parents)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines untranslated) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))
