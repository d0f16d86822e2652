"""Restricted unpickling: a pickle may build only the objects on an allow-list.

``pickle.load`` runs whatever callable a file names (``os.system`` included), so no input
file is ever unpickled with it. Two uses:

* ``load_data_pickle(path)``: AIST++ annotation files. They hold dicts, lists, tuples,
  strings, numbers and numpy arrays, scalars and dtypes; any other global is refused with a
  one-line UserError naming the file and the refused global.
* ``Unpickler`` with ``refused="stub"``: what ``--trust-checkpoint`` uses for foreign
  checkpoints (torch.load's ``pickle_module``). torch's own tensor reconstruction globals and
  the numpy/collections ones are real; every other global, installed or not, becomes an inert
  stub (d2m_bench.training.checkpoint.MissingClass): its code never runs.
"""
from __future__ import annotations

import collections
import copyreg
import pickle
from functools import lru_cache
from pathlib import Path

from ..errors import UserError


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str):
        self.qualname = f"{module}.{name}"
        super().__init__(f"refused global {self.qualname}")


def _encode_latin1(text, encoding="latin1"):
    # Pickles written by Python 2 (and protocol-2 numpy arrays) carry bytes as
    # _codecs.encode(str, "latin1"); any other codec is not something those files use.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


@lru_cache(maxsize=1)
def numpy_globals() -> dict:
    """(module, name) -> object for numpy arrays, scalars and dtypes, under the numpy 1
    (``numpy.core``) and numpy 2 (``numpy._core``) module names."""
    import numpy as np

    core = np._core if hasattr(np, "_core") else np.core
    out = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "_reconstruct")] = core.multiarray._reconstruct
        out[(mod, "scalar")] = core.multiarray.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):  # protocol 5 arrays
        out[(mod, "_frombuffer")] = core.numeric._frombuffer
    out[("numpy", "ndarray")] = np.ndarray
    out[("numpy", "dtype")] = np.dtype
    for code in "?bhilqpBHILQPefdgFDGSUV":
        kind = type(np.dtype(code))
        out[("numpy.dtypes", kind.__name__)] = kind
    return out


def plain_globals() -> dict:
    """Containers and numbers that protocols 0-2 (and Python 2 writers) name as globals."""
    return {("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "complex"): complex,
            ("builtins", "bytearray"): bytearray, ("builtins", "slice"): slice,
            ("__builtin__", "set"): set, ("__builtin__", "frozenset"): frozenset,
            ("__builtin__", "complex"): complex, ("_codecs", "encode"): _encode_latin1,
            ("collections", "OrderedDict"): collections.OrderedDict}


def data_globals() -> dict:
    return {**plain_globals(), **numpy_globals()}


def torch_globals() -> dict:
    """torch's own weights_only allow-list (tensor, storage, dtype and Size reconstruction)."""
    import torch

    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        named = _get_allowed_globals()
    except (ImportError, AttributeError):  # a torch without that helper: the core of it by hand
        from torch import _utils

        named = {"torch._utils._rebuild_tensor_v2": _utils._rebuild_tensor_v2,
                 "torch._utils._rebuild_parameter": _utils._rebuild_parameter,
                 "torch.Size": torch.Size, "collections.OrderedDict": collections.OrderedDict}
    out = {}
    for qual, obj in named.items():
        module, _, name = qual.rpartition(".")
        out[(module, name)] = obj
    return out


class Unpickler(pickle.Unpickler):
    """``find_class`` admits only ``allowed`` ((module, name) -> object).

    ``refused="error"`` raises RefusedGlobal; ``refused="stub"`` returns ``stub(module, name)``
    instead (an inert class), so that a file referencing foreign code still loads its data.
    ``copyreg._reconstructor`` (dict/list subclasses, protocol < 2) is routed through
    ``reconstructor`` when given.
    """

    allowed: dict = {}
    refused = "error"
    stub = None
    reconstructor = None

    def find_class(self, module, name):
        if (module, name) == ("copyreg", "_reconstructor") and self.reconstructor is not None:
            return self.reconstructor
        obj = self.allowed.get((module, name))
        if obj is not None:
            return obj
        if self.refused == "stub" and self.stub is not None:
            return self.stub(module, name)
        raise RefusedGlobal(module, name)


def _plain_reconstructor(cls, base, state):
    # Only reached for classes find_class admitted (all of them plain containers here).
    return copyreg._reconstructor(cls, base, state)


class DataUnpickler(Unpickler):
    reconstructor = staticmethod(_plain_reconstructor)

    def __init__(self, fh):
        super().__init__(fh, encoding="latin1")  # Python 2 str of numpy arrays are bytes
        self.allowed = data_globals()


def load_data_pickle(path):
    """Unpickle a data file (AIST++ annotations) admitting only plain data and numpy arrays.

    UserError (one line, naming the file) for a missing, corrupt or refused file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return DataUnpickler(fh).load()
    except FileNotFoundError:
        raise UserError("missing annotation file", path) from None
    except RefusedGlobal as exc:
        raise UserError(f"refusing to unpickle global '{exc.qualname}': annotation pickles may hold only "
                        "dicts, lists, numbers, strings and numpy arrays", path) from None
    except RecursionError:
        raise UserError("unreadable pickle (nested too deeply)", path) from None
    except Exception as exc:  # pickle raises many types for a corrupt file
        raise UserError(f"unreadable pickle ({exc.__class__.__name__})", path) from None
