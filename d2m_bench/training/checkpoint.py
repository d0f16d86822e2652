"""Checkpoint files: atomic writes and safe loading."""
from __future__ import annotations

from pathlib import Path

from ..atomic import replacing
from ..errors import UserError


def atomic_save(obj, path) -> None:
    """torch.save to a temporary file in the same folder, then rename (no half-written files)."""
    import torch

    with replacing(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


class MissingClass:
    """Stand-in for a pickled class or function whose module is not installed (or lacks it).

    Official checkpoints may reference code of the project that wrote them (``jukebox.*``); only
    the state dict is needed here, so such objects load as inert holders of what was pickled.
    Nothing from the missing module runs. Handles the opcodes by which pickle builds objects:
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
    # for a stub, which keeps the base's contents through SETITEMS/APPENDS instead.
    if isinstance(cls, type) and issubclass(cls, MissingClass):
        return cls()
    import copyreg

    return copyreg._reconstructor(cls, base, state)


def _stub_pickle_module():
    """A ``pickle_module`` for torch.load: real classes when importable, stubs when not."""
    import pickle
    import types

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("copyreg", "_reconstructor"):
                return _reconstructor
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):
                return _stub(module, name)

    mod = types.ModuleType("d2m_bench_stub_pickle")
    mod.Unpickler = Unpickler
    mod.load = lambda f, **kw: Unpickler(f, **kw).load()
    mod.UnpicklingError = pickle.UnpicklingError
    return mod


def torch_load(path, *, map_location="cpu", trust: bool = False):
    """Load a checkpoint with ``weights_only=True`` unless ``trust`` (arbitrary unpickling).

    With ``trust``, classes whose module is not installed become ``MissingClass`` stubs instead
    of failing the load (an official Jukebox file may reference ``jukebox.*``).
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
        lines = [ln.strip() for ln in str(exc).splitlines() if "Unsupported global" in ln or "WeightsUnpickler" in ln]
        detail = (lines[0] if lines else _first_line(exc))[:160]
        raise UserError("checkpoint holds pickled Python objects; if you trust its source, pass "
                        f"--trust-checkpoint ({detail})", path) from None
    except (RuntimeError, EOFError, OSError, ImportError, AttributeError, TypeError, ValueError) as exc:
        # Objects unpickled with --trust-checkpoint can fail in their own code (__setstate__ ...).
        raise UserError(f"unreadable checkpoint ({type(exc).__name__}: {_first_line(exc)})", path) from None


def _first_line(exc) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else "")[:200]
