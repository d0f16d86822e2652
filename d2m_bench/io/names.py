"""Ids and names from data files that become file names.

A TikTok CSV split of ``../../../../DIR`` or a manifest ``segment_id`` of ``../../DIR/victim``
once made `data build` and `generate` write outside ``--out``. Every id, split or name read
from a file and used to build a path goes through ``check_name`` (one character set, no
separators, no ``..``, no leading dot) or, for a relative path column, ``check_relative``.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath

from ..errors import UserError

MAX_NAME = 200
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def name_problem(value) -> str | None:
    """Why ``value`` cannot be a file name here, or None when it can."""
    if not isinstance(value, str) or not value:
        return "empty"
    if len(value) > MAX_NAME:
        return f"longer than {MAX_NAME} characters"
    if ".." in value:
        return "holds '..'"
    if not _NAME.fullmatch(value):
        return "may hold only letters, digits and _ . + - (no separators, no leading dot)"
    return None


def check_name(value, what: str, path=None) -> str:
    """``value`` when it is a safe file name, else UserError naming ``what`` and the value."""
    problem = name_problem(value)
    if problem:
        raise UserError(f"{what} {str(value)[:80]!r} is not a usable name ({problem})", path)
    return value


def check_relative(value, what: str, path=None) -> str:
    """A relative POSIX path of safe names (``audio/test/x.wav``), or ''."""
    if value == "":
        return value
    parts = PurePosixPath(value).parts
    if not parts or value.startswith("/") or "\\" in value or any(name_problem(p) for p in parts):
        raise UserError(f"{what} {str(value)[:80]!r} is not a path inside the dataset", path)
    return value
