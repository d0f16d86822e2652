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


def _reconstructor(cls, base, state):
    # copyreg._reconstructor builds dict/list subclasses with base.__new__(cls): not possible
    # for a stub, which keeps the base's contents through SETITEMS/APPENDS instead. Any other
    # class here came through find_class, so it is on the allow-list.
    if isinstance(cls, type) and issubclass(cls, MissingClass):
        return cls()
    import copyreg

    return copyreg._reconstructor(cls, base, state)


def trusted_globals() -> dict:
    """What ``--trust-checkpoint`` builds for real: torch's tensor/storage/dtype reconstruction
    (its weights_only allow-list), numpy arrays, scalars and dtypes, plain containers. The
    base classes copyreg._reconstructor needs are included; calling them builds empty objects."""
    from ..io.safe_pickle import data_globals, torch_globals

    bases = {("builtins", n): getattr(__import__("builtins"), n) for n in ("object", "dict", "list")}
    return {**data_globals(), **torch_globals(), **bases}


def _stub_pickle_module():
    """A ``pickle_module`` for torch.load: allow-listed globals are real, every other one a stub."""
    import pickle
    import types

    from ..io.safe_pickle import Unpickler as Restricted

    allowed = trusted_globals()

    class Unpickler(Restricted):
        refused = "stub"
        stub = staticmethod(_stub)
        reconstructor = staticmethod(_reconstructor)

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.allowed = allowed

    mod = types.ModuleType("d2m_bench_stub_pickle")
    mod.Unpickler = Unpickler
    mod.load = lambda f, **kw: Unpickler(f, **kw).load()
    mod.UnpicklingError = pickle.UnpicklingError
    return mod


def torch_load(path, *, map_location="cpu", trust: bool = False):
    """Load a checkpoint with ``weights_only=True`` (tensors, containers, numbers) unless ``trust``.

    With ``trust`` (``--trust-checkpoint``) the file is unpickled by a restricted unpickler:
    torch's tensor reconstruction, numpy arrays and plain containers are built for real; every
    other global (a missing ``jukebox.*`` class, an installed ``os.system``) loads as an inert
    ``MissingClass`` stub, so a file can carry foreign objects but never run them.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError("no such checkpoint", path)
    try:
        if trust:
            return torch.load(path, map_location=map_location, weights_only=False,
                              pickle_module=_stub_pickle_module())
        return torch.load(path, map_location=map_location, weights_only=True)
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
    except (RuntimeError, EOFError, OSError, ImportError, AttributeError, TypeError, ValueError) as exc:
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

