"""Checkpoint files: atomic writes and safe loading."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import UserError


def atomic_save(obj, path) -> None:
    """torch.save to a temporary file in the same folder, then rename (no half-written files)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="tmp-ckpt-", suffix=".pt")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def torch_load(path, *, map_location="cpu", trust: bool = False):
    """Load a checkpoint with ``weights_only=True`` unless ``trust`` (arbitrary unpickling)."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError("no such checkpoint", path)
    try:
        return torch.load(path, map_location=map_location, weights_only=not trust)
    except pickle.UnpicklingError as exc:
        raise UserError("checkpoint holds pickled Python objects; if you trust its source, pass "
                        f"--trust-checkpoint ({str(exc).splitlines()[0][:120]})", path) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise UserError(f"unreadable checkpoint ({str(exc).splitlines()[0][:200]})", path) from None
