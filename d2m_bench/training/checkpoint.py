"""Checkpoint files: atomic writes and safe loading."""
from __future__ import annotations

from pathlib import Path

from ..io.atomic import replacing
from ..errors import UserError


def atomic_save(obj, path) -> None:
    """torch.save to a temporary file in the same folder, then rename (no half-written files)."""
    import torch

    with replacing(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


class MissingClass:
    """Stand-in for a pickled class or function that is not on the allow-list of
    ``--trust-checkpoint`` (d2m_bench.io.safe_pickle): a missing module (``jukebox.*``) and an
    installed callable (``os.system``) alike.

    Official checkpoints may reference code of the project that wrote them; only the state
    dict is needed here, so such objects load as inert holders of what was pickled. Nothing
    the stub stands for runs. Handles the opcodes by which pickle builds objects:
    call (REDUCE), NEWOBJ, BUILD (``__setstate__``), SETITEMS and APPENDS (dict/list subclasses).
    """

    missing = "?"

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state, self.items, self.list = args, kwargs, None, {}, []

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value):
        self.__dict__.setdefault("list", []).append(value)

    def extend(self, values):
        self.__dict__.setdefault("list", []).extend(values)

    def __repr__(self):
        return f"<missing {self.missing}>"


def _stub(module: str, name: str):
    return type(name, (MissingClass,), {"missing": f"{module}.{name}", "__module__": __name__})


def torch_load(path, *, map_location="cpu", trust: bool = False):
    """Load a checkpoint through d2m_bench.io.safe_pickle: tensors, plain numeric numpy arrays,
    containers and numbers, memory bounded by the file's size; anything else is refused by name.

    With ``trust`` (``--trust-checkpoint``) every other global (a missing ``jukebox.*`` class, an
    installed ``os.system``) loads as an inert ``MissingClass`` stub instead, so a file can carry
    foreign objects but never run them.
    """
    import pickle

    from ..io.safe_pickle import Refused, load_torch

    path = Path(path)
    if not path.is_file():
        raise UserError("no such checkpoint", path)
    try:
        return load_torch(path, map_location=map_location, stub=_stub if trust else None)
    except Refused as exc:
        raise UserError(f"refusing to unpickle: {_first_line(exc)}", path) from None
    except MemoryError:
        raise UserError("unreadable checkpoint (out of memory)", path) from None
    except pickle.UnpicklingError as exc:
        if trust:
            raise UserError(f"unreadable checkpoint ({_first_line(exc)})", path) from None
        # torch's message is a page of advice; the "Unsupported global" line names the object.
        lines = [ln.strip() for ln in str(exc).splitlines()
                 if "global" in ln.lower() and "weights_only" not in ln or "but got <" in ln]
        if not lines:  # random bytes, a truncated file: no pickled object that a flag would admit
            raise UserError("unreadable checkpoint (not a torch file)", path) from None
        raise UserError("checkpoint holds pickled Python objects; if you trust its source and it is a VQ-VAE "
                        f"file, pass --trust-checkpoint, which loads them as inert stubs ({lines[0][:160]})",
                        path) from None
    except (RuntimeError, EOFError, OSError, ImportError, AttributeError, TypeError, ValueError, KeyError,
            IndexError) as exc:
        # Allow-listed reconstruction functions can still fail on malformed arguments.
        raise UserError(f"unreadable checkpoint ({type(exc).__name__}: {_first_line(exc)})", path) from None


def _first_line(exc) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else "")[:200]


# The D2M-GAN run format and the level names live here, beside the loaders, so that training,
# generation and import all depend on this module and never on one another.
CKPT_FORMAT = "d2m-bench-d2m/1"
LEVELS = {"high": 2, "low": 1}


def level_index(level: str) -> int:
    if level not in LEVELS:
        raise UserError(f"level must be 'high' or 'low', got '{level}'")
    return LEVELS[level]

