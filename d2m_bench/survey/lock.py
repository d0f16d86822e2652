"""The survey folder's lock: held by `survey serve` for as long as it serves, and by `survey
build` while it replaces a survey, so a rebuild can never pull the database out from under a
running server (issue 13: ratings acknowledged with 201 were written into a deleted file).

An advisory ``flock`` on ``SURVEY/.survey.lock``: the kernel drops it when the holder exits,
however it exits (SIGKILL included), so a crashed server never leaves a stale lock behind.
The file itself is never removed (removing a lock file races with a process about to lock it).
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import UserError
from ..io.nofollow import open_own_file

LOCK_NAME = ".survey.lock"


class SurveyLock:
    """An exclusive, non-blocking lock on a survey folder; ``release()`` (or exit) frees it."""

    def __init__(self, folder, *, purpose: str):
        self.path = Path(folder) / LOCK_NAME
        self._fd = open_own_file(self.path, os.O_RDWR | os.O_CREAT, what="survey lock file")
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(self._fd)
            os.close(self._fd)
            self._fd = None
            raise UserError(f"the survey is in use{holder}: stop `survey serve` (or wait for the build) first",
                            Path(folder)) from None
        # Who holds it, for the refusal message of the next caller (informative only).
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{purpose} pid {os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _read_holder(fd) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f" ({text})" if text else ""
