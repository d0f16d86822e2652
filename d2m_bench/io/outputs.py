"""Output paths checked before any work starts: never an input, never each other, writable.

Every command that writes files calls ``check_outputs`` with its outputs and its inputs
before it reads, computes or deletes anything, so that ``eval --out gt/clip000.wav``,
``eval --csv MANIFEST``, ``--out`` equal to ``--csv`` or ``leaderboard --csv runs/x.json``
are one-line errors (exit 2) instead of destroyed inputs, and an output folder that cannot
be written is found before an hour of evaluation rather than after it.

"The same file" means the same path after resolving links, or the same inode (a hard link
or a bind mount), as ``os.path.samefile`` decides.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import UserError


def _ident(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _resolved(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare the literal path
        return path.absolute()


def _files_under(folder: Path) -> dict:
    """(dev, ino) -> path for every file below ``folder`` (links followed only at the top)."""
    out = {}
    for top, dirs, files in os.walk(folder):
        for name in files:
            p = Path(top) / name
            ident = _ident(p)
            if ident is not None:
                out.setdefault(ident, p)
    return out


def check_writable_location(label: str, path: Path) -> None:
    """UserError unless ``path`` can be created or replaced: its folder (or the nearest existing
    ancestor, which the writer will create folders in) is a writable folder, and ``path``
    itself is not a folder. Nothing is created."""
    if path.is_dir():
        raise UserError(f"{label} is a folder, expected a file path", path)
    ancestor = path.parent if str(path.parent) else Path(".")
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"cannot write {label}: {ancestor} is not a folder", path)
    try:
        # A real attempt: permission bits say nothing for root or a read-only mount.
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        raise UserError(f"cannot write {label} ({exc.strerror or exc.__class__.__name__} in {ancestor})",
                        path) from None


def check_outputs(outputs: dict, inputs: dict | None = None, *, writable: bool = True) -> None:
    """Refuse, before any work, outputs that are inputs or each other, or unwritable.

    ``outputs``: option label -> file path (None entries are skipped). ``inputs``: label ->
    a file, a folder (every file below it counts) or a list of files; None entries skipped.
    """
    outs = [(label, Path(p)) for label, p in outputs.items() if p is not None and str(p) != ""]
    seen = []
    for label, path in outs:
        for other_label, other in seen:
            ident = _ident(path)
            if _resolved(path) == _resolved(other) or (ident is not None and ident == _ident(other)):
                raise UserError(f"{label} and {other_label} are the same file; give them different paths", path)
        seen.append((label, path))
    if writable:
        for label, path in outs:
            check_writable_location(label, path)
    existing = [(label, path, _ident(path)) for label, path in outs]
    files, folders = [], []
    for label, value in (inputs or {}).items():
        if value is None:
            continue
        for item in (value if isinstance(value, (list, tuple, set)) else [value]):
            item = Path(item)
            (folders if item.is_dir() else files).append((label, item))
    for label, path, ident in existing:
        for in_label, item in files:
            if _resolved(path) == _resolved(item) or (ident is not None and ident == _ident(item)):
                raise UserError(f"{label} is the input {in_label} ({item}); refusing to overwrite it", path)
    idents = {ident for _, _, ident in existing if ident is not None}
    if not idents:
        return  # no output exists yet, so none can be a file inside an input folder
    for in_label, folder in folders:
        inside = _files_under(folder)
        for label, path, ident in existing:
            if ident in inside:
                raise UserError(f"{label} is {inside[ident]}, a file of the input {in_label} ({folder}); "
                                "refusing to overwrite it", path)


def check_output_folder(label: str, out, inputs: dict | None = None, *, claims=None) -> None:
    """Refuse, before any work, an output FOLDER whose writing or clearing would reach an input.

    ``claims``: the names directly inside ``out`` that the command writes, replaces or deletes
    (files or folders; everything below a claimed folder counts); None: the whole folder.
    ``inputs``: label -> a file, a folder or a list of them; None entries skipped.

    Refused: ``out`` exists and is not a folder; ``out`` is an input folder (a command writing
    there would mix its files with the input's, e.g. ``generate --out`` the dataset root); an
    input at or below a claimed path (``--force`` clearing ``OUT/stimuli`` that holds a system's
    clips); a file below a claimed path that is an input file or a file of an input folder,
    through any link (same path after resolving, or same inode). Outputs merely beside or
    inside an input folder stay allowed, as in ``check_outputs``.
    """
    if out is None:
        return
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{label} exists and is not a folder", out)
    root = _resolved(out)
    claimed = [root] if claims is None else [_resolved(out / name) for name in claims]
    items = []
    for in_label, value in (inputs or {}).items():
        if value is None:
            continue
        for item in (value if isinstance(value, (list, tuple, set)) else [value]):
            if item is not None and str(item) != "":
                items.append((in_label, Path(item)))
    for in_label, item in items:
        real = _resolved(item)
        if real == root and not item.is_file():
            raise UserError(f"{label} is the input {in_label} ({item}); give a folder of its own", out)
        for c in claimed:
            if real == c or real.is_relative_to(c):
                what = "it" if c == root else f"{c.name} in it"
                raise UserError(f"{label} holds the input {in_label} ({item}), which writing {what} would "
                                "overwrite or delete; give another folder", out)
    # Links: a claimed path (or something below it) that is an input file under another name.
    below = {}
    for c in claimed:
        if c.is_dir():
            below.update(_files_under(c))
        elif (ident := _ident(c)) is not None:
            below.setdefault(ident, c)
    if not below:
        return
    for in_label, item in items:
        files = _files_under(item) if item.is_dir() else {_ident(item): item}
        for ident, path in files.items():
            if ident is not None and ident in below:
                raise UserError(f"{label} holds {below[ident]}, which is {path} of the input {in_label} "
                                "(a link); refusing to overwrite it", out)
