"""Opening the small files a command keeps in its own folders (locks, markers) without
following a link planted there.

A lock opened with O_CREAT follows a symlink ``SURVEY/.survey.lock -> ~/notes.txt`` and the
truncate that records the holder then empties notes.txt; a hard link does the same. So these
files are opened with O_NOFOLLOW and refused unless they are regular files with one link.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import UserError


def open_own_file(path, flags: int, mode: int = 0o644, *, what: str) -> int:
    """``os.open(path, flags | O_NOFOLLOW)``; UserError (one line) for a link, a hard-linked or
    non-regular file, or any OSError. Returns the descriptor."""
    path = Path(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as exc:
        if path.is_symlink():
            raise UserError(f"refusing the {what}: it is a symbolic link (to {os.readlink(path)!r:.120}); "
                            "remove it", path) from None
        raise UserError(f"cannot open the {what} ({exc.strerror})", path) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        raise UserError(f"refusing the {what}: not a plain file of its own "
                        f"({'hard-linked' if stat.S_ISREG(st.st_mode) else 'not a regular file'}); remove it", path)
    return fd


def write_own_file(path, text: str, *, what: str) -> None:
    """Replace the contents of a small marker file, never through a link."""
    fd = open_own_file(path, os.O_WRONLY | os.O_CREAT, what=what)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
