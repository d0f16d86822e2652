"""Files that appear whole or not at all.

Every result, dataset file, cache entry, checkpoint and download is written under a temporary
name in the target's own folder (same filesystem, so the final rename is atomic) and renamed
over the target only once the writer has finished. Readers never see half a file, a killed
writer leaves nothing under the real name, and two writers of one cache entry simply race to
the same complete content.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    # Linux reports the umask without changing it; elsewhere set-and-restore (not thread-safe,
    # but only reached off Linux).
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def replacing(path, *, suffix: str | None = None):
    """Yield a temporary path beside ``path``; on a clean exit it becomes ``path``.

    The temporary name keeps ``path``'s suffix (or ``suffix``) because writers such as
    ``np.save``, soundfile and PyAV choose the format from it. ``mkstemp`` creates files with
    mode 0600; the finished file gets the mode an ordinary ``open()`` would have given it, so
    datasets, caches and results stay readable by the other users they are shared with.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-",
                               suffix=path.suffix if suffix is None else suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines untranslated) to ``path`` atomically."""
    with replacing(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
