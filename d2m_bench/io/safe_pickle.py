"""Restricted, memory-bounded unpickling: a pickle may build only plain data.

``pickle.load`` runs whatever callable a file names (``os.system`` included), and even an
allow-list of "harmless" globals is not enough: numpy's ``dtype.__setstate__`` can turn a
plain field of an existing array into an object field (the raw bytes of the file then become
pointers: a crash or worse), and ``bytearray(2**33)`` is on torch's own weights_only list. So
every untrusted pickle and torch file is read by one pure-Python unpickler that

* admits a global only from an allow-list and *calls* only the few that build values;
* builds numpy dtypes only from a plain numeric/bool type code (no fields, no object dtype,
  no sub-arrays) and lets ``BUILD`` set a dtype's state once, right after it was made, with a
  state that cannot add fields; arrays are built only from raw bytes whose length equals
  shape x item size;
* charges every allocation a value asks for (arrays, bytearrays, tensor sizes, torch
  storages) to a budget derived from the file's size, so that a 1 kB file cannot ask for
  8 GiB.

Uses: ``load_data_pickle`` (AIST++ annotations) and ``load_torch`` (weights and checkpoints,
with ``stub`` for ``--trust-checkpoint``: every other global becomes an inert stub).
"""
from __future__ import annotations

import _compat_pickle
import collections
import copyreg
import io
import pickle
import zipfile
from functools import lru_cache
from pathlib import Path

from ..errors import UserError

# What a pickle may allocate beyond its own size: small files (an annotation pickle holds
# arrays as raw bytes in the file, a torch file its storages) never need more than their size.
BUDGET_SLACK = 16 * 2**20
MAX_DATA_PICKLE_BYTES = 2**30
PLAIN_KINDS = frozenset("?biufc")


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str):
        self.qualname = f"{module}.{name}"
        super().__init__(f"refused global {self.qualname}")


class Refused(pickle.UnpicklingError):
    """A value the file asks for that is not plain data or exceeds the budget (one line)."""


def budget_for(nbytes: int) -> int:
    return 2 * int(nbytes) + BUDGET_SLACK


def _encode_latin1(text, encoding="latin1"):
    # Pickles written by Python 2 (and protocol-2 numpy arrays) carry bytes as
    # _codecs.encode(str, "latin1"); any other codec is not something those files use.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise Refused(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


def _int_product(values) -> int:
    out = 1
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise Refused(f"refused a shape holding {type(v).__name__} {v!r:.40}")
        out *= v
        if out > 2**62:
            return out
    return out


def plain_dtype(dtype, what="dtype"):
    """``dtype`` itself when it is a plain numeric/bool dtype, else Refused."""
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.kind not in PLAIN_KINDS or dtype.fields is not None \
            or dtype.subdtype is not None or dtype.hasobject or dtype.metadata:
        raise Refused(f"refused {what} {dtype!r:.60}: only plain numeric and bool dtypes are admitted")
    return dtype


class Unpickler(pickle._Unpickler):
    """``find_class`` admits only the allow-list; REDUCE/NEWOBJ/INST call only value builders;
    BUILD, SETITEMS and APPENDS touch only what they may; every allocation is charged to
    ``budget`` bytes.

    ``stub(module, name)``, when given, stands in for any global not on the list (an inert
    class, ``--trust-checkpoint``); otherwise such a global is RefusedGlobal.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, *, budget: int, stub=None, **kwargs):
        kwargs.setdefault("encoding", "latin1")  # Python 2 str of numpy arrays are bytes
        super().__init__(file, **kwargs)
        self.budget = self.budget_total = int(budget)
        self.stub = stub
        self._values, self._callables = _allow_list(self._torch)
        self._callables = {**self._callables, **self._numpy_builders()}
        self._fresh_dtypes: dict = {}   # id -> dtype made here whose state is not set yet
        self._fresh_arrays: dict = {}   # id -> empty array from _reconstruct awaiting BUILD
        self._storage_keys: set = set()
        self._persistent_load = None
        self._stubs: set = set()  # the classes ``stub`` made: inert, any opcode may use them

    # -- budget ---------------------------------------------------------------------------
    def charge(self, nbytes: int, what: str) -> None:
        if nbytes > self.budget:
            raise Refused(f"refused {what} of {nbytes:,} bytes: more than this file can hold "
                          f"(a memory bomb?)")
        self.budget -= nbytes

    # -- globals --------------------------------------------------------------------------
    def find_class(self, module, name):
        if self.proto < 3 and self.fix_imports:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        key = (module, name)
        if key in self._callables:
            return self._callables[key]
        if key in self._values:
            return self._values[key]
        if self.stub is not None:
            made = self.stub(module, name)
            self._stubs.add(made)
            return made
        raise RefusedGlobal(module, name)

    def _call(self, func, args, kwargs=None):
        if not isinstance(args, tuple) or (kwargs is not None and not isinstance(kwargs, dict)):
            raise Refused("refused a call whose arguments are not a tuple")
        if self._is_stub(func):
            return func(*args, **(kwargs or {}))
        if not any(func is f for f in self._callables.values()):
            raise Refused(f"refused a call of {getattr(func, '__name__', type(func).__name__)!s:.60}")
        return func(*args, **(kwargs or {}))

    def _is_stub(self, obj) -> bool:
        return isinstance(obj, type) and obj in self._stubs

    def _is_stub_instance(self, obj) -> bool:
        return type(obj) in self._stubs

    def load_reduce(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)
    dispatch[pickle.REDUCE[0]] = load_reduce

    def _instantiate(self, klass, args):
        self.append(self._call(klass, tuple(args)))

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._newobj(cls, args, {}))
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._newobj(cls, args, kwargs))
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def _newobj(self, cls, args, kwargs):
        # cls.__new__ allocates for numpy and torch types (ndarray.__new__(ndarray, (2**40,)));
        # only stubs and the plain containers are made this way.
        if self._is_stub(cls) or cls in (object, dict, list, set, collections.OrderedDict, collections.Counter):
            if not isinstance(args, tuple) or not isinstance(kwargs, dict):
                raise Refused("refused NEWOBJ arguments")
            return cls.__new__(cls, *args, **kwargs)
        raise Refused(f"refused to create {getattr(cls, '__name__', type(cls).__name__)!s:.60} by NEWOBJ")

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if id(inst) in self._fresh_dtypes:
            self._build_dtype(inst, state)
        elif id(inst) in self._fresh_arrays:
            self._build_array(inst, state)
        elif self._is_stub_instance(inst):
            inst.__setstate__(state)
        elif type(inst) is collections.OrderedDict and isinstance(state, dict):
            inst.__dict__.update(state)  # torch keeps _metadata there
        elif self._torch_build(inst, state):
            pass
        else:
            raise Refused(f"refused to set the state of {type(inst).__name__!s:.60} (BUILD)")
    dispatch[pickle.BUILD[0]] = load_build

    def _torch_build(self, inst, state) -> bool:
        if not self._torch:
            return False
        import torch

        if type(inst) is torch.nn.Parameter:
            inst.__setstate__(state)
            return True
        return False

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._container(self.stack[-1], dict)[key] = value
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        items = self.pop_mark()
        target = self._container(self.stack[-1], dict)
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_append(self):
        value = self.stack.pop()
        self._container(self.stack[-1], list).append(value)
    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self):
        items = self.pop_mark()
        target = self._container(self.stack[-1], list)
        for item in items:
            target.append(item)
    dispatch[pickle.APPENDS[0]] = load_appends

    def load_additems(self):
        items = self.pop_mark()
        target = self._container(self.stack[-1], set)
        for item in items:
            target.add(item)
    dispatch[pickle.ADDITEMS[0]] = load_additems

    def _container(self, obj, kind):
        # Item opcodes on an array, a tensor or a bytearray would index into it.
        if isinstance(obj, kind) or self._is_stub_instance(obj):
            return obj
        raise Refused(f"refused to add items to {type(obj).__name__!s:.60}")

    # -- torch's persistent ids: storages are charged before torch allocates them ------------
    @property
    def persistent_load(self):
        if self._persistent_load is None:
            raise pickle.UnpicklingError("persistent id in a plain pickle")
        return self._guarded_persistent_load

    @persistent_load.setter
    def persistent_load(self, func):
        self._persistent_load = func

    def _guarded_persistent_load(self, pid):
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            storage_type, key, numel = pid[1], pid[2], pid[-2] if len(pid) == 6 else pid[4]
            if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
                raise Refused(f"refused a storage of {numel!r:.40} elements")
            if key not in self._storage_keys:
                self._storage_keys.add(key if isinstance(key, (str, int)) else repr(key)[:80])
                self.charge(numel * _element_size(storage_type), "a tensor storage")
        return self._persistent_load(pid)

    # -- numpy ------------------------------------------------------------------------------
    def _numpy_builders(self) -> dict:
        out = {}
        for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
            out[(mod, "_reconstruct")] = self._np_reconstruct
            out[(mod, "scalar")] = self._np_scalar
        for mod in ("numpy.core.numeric", "numpy._core.numeric"):  # protocol 5 arrays
            out[(mod, "_frombuffer")] = self._np_frombuffer
        out[("numpy", "dtype")] = self._np_dtype
        out[("builtins", "bytearray")] = self._bytearray
        out[("copyreg", "_reconstructor")] = self._reconstructor
        if self._torch:
            out.update(self._torch_builders())
        return out

    _torch = False

    def _np_dtype(self, spec, align=False, copy=False):
        import numpy as np

        if isinstance(spec, bytes):
            spec = spec.decode("latin-1")
        if not isinstance(spec, str) or len(spec) > 8:
            raise Refused(f"refused dtype {spec!r:.60}: only plain numeric and bool type codes are admitted")
        try:
            dtype = np.dtype(spec, bool(align), True)  # a new object, never numpy's shared one
        except TypeError as exc:
            raise Refused(f"refused dtype {spec!r:.20} ({exc})") from None
        plain_dtype(dtype)
        self._fresh_dtypes[id(dtype)] = dtype
        return dtype

    def _build_dtype(self, dtype, state):
        # numpy's own pickles: (3, endian, None, None, None, -1, -1, 0) right after dtype(...).
        # A state with names, fields, a sub-array or flags would re-shape a dtype that arrays
        # built since may already use; only the byte order may be set, and only once.
        del self._fresh_dtypes[id(dtype)]
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
                and state[1] in ("<", ">", "|", "=") and state[2:5] == (None, None, None)
                and state[5] in (-1, dtype.itemsize) and isinstance(state[6], int) and state[7] == 0
                and (len(state) == 8 or state[8] is None)):
            raise Refused(f"refused dtype state {state!r:.80}: only a byte order may be set")
        dtype.__setstate__(state)
        plain_dtype(dtype)

    def _np_reconstruct(self, subtype, shape, typecode):
        import numpy as np

        if subtype is not np.ndarray or shape != (0,) or typecode not in (b"b", "b"):
            raise Refused("refused numpy _reconstruct other than an ndarray's (0,) b'b'")
        arr = np.ndarray.__new__(np.ndarray, (0,), "b")
        self._fresh_arrays[id(arr)] = arr
        return arr

    def _build_array(self, arr, state):
        del self._fresh_arrays[id(arr)]
        if not isinstance(state, tuple) or len(state) != 5:
            raise Refused("refused numpy array state (not a 5-tuple)")
        _version, shape, dtype, fortran, raw = state
        if not isinstance(shape, tuple):
            raise Refused("refused numpy array state (shape is not a tuple)")
        plain_dtype(dtype, "array dtype")
        if isinstance(raw, str):  # a Python 2 str under encoding="latin1"
            raw = raw.encode("latin-1")
        if not isinstance(raw, (bytes, bytearray)):
            raise Refused(f"refused numpy array data of type {type(raw).__name__!s:.40}")
        nbytes = _int_product(shape) * dtype.itemsize
        if nbytes != len(raw):
            raise Refused(f"refused numpy array: shape {shape!s:.60} x {dtype.itemsize} bytes is not its "
                          f"{len(raw)} bytes of data")
        self.charge(nbytes, "a numpy array")
        arr.__setstate__((_version, shape, dtype, bool(fortran), bytes(raw)))

    def _np_frombuffer(self, buf, dtype, shape, order):
        import numpy as np

        if isinstance(buf, pickle.PickleBuffer):
            buf = bytes(buf.raw())
        if not isinstance(buf, (bytes, bytearray)) or not isinstance(shape, tuple) or order not in ("C", "F", "A"):
            raise Refused("refused numpy _frombuffer arguments")
        plain_dtype(dtype, "array dtype")
        nbytes = _int_product(shape) * dtype.itemsize
        if nbytes != len(buf):
            raise Refused(f"refused numpy array: shape {shape!s:.60} does not fit its {len(buf)} bytes")
        self.charge(nbytes, "a numpy array")
        return np.frombuffer(bytes(buf), dtype).reshape(shape, order=order).copy(order=order)

    def _np_scalar(self, dtype, raw=None):
        import numpy as np

        plain_dtype(dtype, "scalar dtype")
        if isinstance(raw, str):
            raw = raw.encode("latin-1")
        if not isinstance(raw, bytes) or len(raw) != dtype.itemsize:
            raise Refused("refused numpy scalar whose data is not its item size")
        return np.frombuffer(raw, dtype)[0]

    def _reconstructor(self, cls, base, state=None):
        # copyreg._reconstructor (protocol 0/1 dict and list subclasses): a stub keeps the
        # base's contents through SETITEMS/APPENDS; otherwise only plain containers.
        if self._is_stub(cls):
            return cls()
        if cls not in (collections.OrderedDict, collections.Counter, dict, list, set) \
                or base not in (object, dict, list) or not (state is None or isinstance(state, (dict, list))):
            raise Refused(f"refused copyreg._reconstructor of {getattr(cls, '__name__', type(cls).__name__)!s:.60}")
        return copyreg._reconstructor(cls, base, state)

    def _bytearray(self, *args):
        if args and isinstance(args[0], int) and not isinstance(args[0], bool):
            self.charge(args[0], "a bytearray")
        elif args and not isinstance(args[0], (bytes, bytearray, list, tuple, str)):
            raise Refused(f"refused bytearray of {type(args[0]).__name__!s:.40}")
        return bytearray(*args)

    # -- torch ------------------------------------------------------------------------------
    def _torch_builders(self) -> dict:
        from torch import _utils

        def sized(func, size_at):
            def build(*args):
                size = args[size_at] if len(args) > size_at else None
                storage = args[0] if args else None
                if not isinstance(size, tuple):
                    raise Refused(f"refused {func.__name__} without a size tuple")
                # A view (tied weights, zero strides) may repeat its storage's bytes, so the
                # size is capped, not charged: torch checks it against the storage.
                nbytes = _int_product(size) * _element_size(storage)
                if nbytes > self.budget_total:
                    raise Refused(f"refused a tensor of {nbytes:,} bytes: more than this file can hold")
                return func(*args)
            build.__name__ = func.__name__
            return build

        return {("torch._utils", "_rebuild_tensor"): sized(_utils._rebuild_tensor, 2),
                ("torch._utils", "_rebuild_tensor_v2"): sized(_utils._rebuild_tensor_v2, 2),
                ("torch._utils", "_rebuild_parameter"): _utils._rebuild_parameter,
                ("torch._utils", "_rebuild_parameter_with_state"): _utils._rebuild_parameter_with_state,
                ("torch._tensor", "_rebuild_from_type_v2"): self._rebuild_from_type_v2}

    def _rebuild_from_type_v2(self, func, new_type, args, state):
        import torch

        if new_type not in (torch.Tensor, torch.nn.Parameter) or state:
            raise Refused("refused a tensor subclass or tensor state")
        ret = self._call(func, args)
        if not isinstance(ret, torch.Tensor):
            raise Refused("refused _rebuild_from_type_v2 of a non-tensor")
        return ret if type(ret) is new_type else ret.as_subclass(new_type)

    def load(self):
        try:
            return super().load()
        finally:
            self._fresh_dtypes.clear()
            self._fresh_arrays.clear()


def _element_size(storage_or_type) -> int:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch globals imply torch
        return 8
    dtype = getattr(storage_or_type, "dtype", None)
    if storage_or_type is torch.UntypedStorage or isinstance(storage_or_type, torch.UntypedStorage):
        return 1
    if isinstance(dtype, torch.dtype):
        return max(1, dtype.itemsize)
    return 8


@lru_cache(maxsize=2)
def _allow_list(with_torch: bool):
    """(values, callables): globals admitted as values only, and the ones a pickle may call."""
    import numpy as np

    values = {("numpy", "ndarray"): np.ndarray}
    for code in "?bhilqpBHILQPefdgFDG":
        kind = type(np.dtype(code))
        values[("numpy.dtypes", kind.__name__)] = kind
    callables = {("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
                 ("builtins", "complex"): complex, ("builtins", "slice"): slice,
                 ("_codecs", "encode"): _encode_latin1,
                 ("collections", "OrderedDict"): collections.OrderedDict,
                 ("collections", "Counter"): collections.Counter,
                 ("builtins", "object"): object,
                 ("builtins", "dict"): dict, ("builtins", "list"): list}
    if with_torch:
        import torch

        callables[("torch", "Size")] = torch.Size
        callables[("torch", "device")] = torch.device
        from torch._weights_only_unpickler import _get_allowed_globals

        for qual, obj in _get_allowed_globals().items():
            module, _, name = qual.rpartition(".")
            # Storage and tensor classes are needed as values (a storage's type); calling one
            # allocates, so they are never callable here.
            if isinstance(obj, (torch.dtype, type)) and not (module == "builtins" or module == "collections"):
                values[(module, name)] = obj
    return values, callables


class TorchUnpickler(Unpickler):
    """The same, with torch's tensor and storage reconstruction (what torch.load needs)."""

    _torch = True


def _one_line(exc) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


def load_data_pickle(path):
    """Unpickle a data file (AIST++ annotations) admitting only plain data and numpy arrays.

    UserError (one line, naming the file) for a missing, corrupt, refused or oversized file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_DATA_PICKLE_BYTES:
            raise UserError(f"annotation pickle of {size:,} bytes is larger than any annotation file "
                            f"({MAX_DATA_PICKLE_BYTES:,})", path)
        # Read whole: a length field in the stream can then never make a read allocate more
        # than the file holds.
        data = path.read_bytes()
        return Unpickler(io.BytesIO(data), budget=budget_for(len(data))).load()
    except FileNotFoundError:
        raise UserError("missing annotation file", path) from None
    except RefusedGlobal as exc:
        raise UserError(f"refusing to unpickle global '{exc.qualname}': annotation pickles may hold only "
                        "dicts, lists, numbers, strings and numpy arrays", path) from None
    except Refused as exc:
        raise UserError(f"refusing to unpickle: {_one_line(exc)}", path) from None
    except RecursionError:
        raise UserError("unreadable pickle (nested too deeply)", path) from None
    except UserError:
        raise
    except MemoryError:
        raise UserError("unreadable pickle (out of memory)", path) from None
    except Exception as exc:  # pickle raises many types for a corrupt file
        raise UserError(f"unreadable pickle ({exc.__class__.__name__})", path) from None


def _check_zip_members(path: Path, size: int) -> None:
    # torch stores its records uncompressed; a compressed record could expand a small file
    # into gigabytes before any of our checks sees it.
    with zipfile.ZipFile(path) as zf:
        declared = sum(info.file_size for info in zf.infolist())
    if declared > size:
        raise Refused(f"refused a torch file whose records expand to {declared:,} bytes from {size:,}")


def load_torch(path, *, map_location="cpu", stub=None):
    """``torch.load`` through the restricted, budgeted unpickler (never torch's own pickle).

    Without ``stub`` any global outside torch's tensor reconstruction, numpy arrays and plain
    containers is RefusedGlobal (a pickle.UnpicklingError naming it); with ``stub`` it becomes
    ``stub(module, name)``. A value that is not plain data or exceeds the budget is Refused.
    Callers turn both into their one-line messages.
    """
    import types

    import torch

    path = Path(path)
    size = path.stat().st_size
    budget = budget_for(size)
    if zipfile.is_zipfile(path):
        _check_zip_members(path, size)
        source = str(path)
    else:  # legacy format: read whole, so that declared lengths cannot make reads allocate
        source = io.BytesIO(path.read_bytes())

    class Bound(TorchUnpickler):
        def __init__(self, file, **kwargs):
            super().__init__(file, budget=budget, stub=stub, **kwargs)

    module = types.ModuleType("d2m_bench_safe_pickle")
    module.Unpickler = Bound
    module.load = lambda f, **kw: Bound(f, **kw).load()
    module.UnpicklingError = pickle.UnpicklingError
    module.__name__ = "d2m_bench_safe_pickle"
    return torch.load(source, map_location=map_location, weights_only=False, pickle_module=module)
