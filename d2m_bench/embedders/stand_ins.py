"""Stand-ins for modules that a backend library imports but d2m-bench never reaches.

Some backend libraries import, at module level, packages that only their training or image code
uses (laion_clap: torchvision; hear21passt: timm for a download helper; encodec: torchaudio for
file I/O), and those packages cannot always be installed beside the user's torch. While such a
library is imported, ``stand_ins`` puts an inert package in place of each one that is absent:
every attribute and submodule of it imports, and calling or instantiating any of them raises
``ImportError`` with the reason given, so a code path that really needed the package fails
loudly instead of computing something else. ``provided`` hands real objects to the few dotted
names that the inference path does call (PaSST's mel banks when torchaudio is absent).

Installed packages are never replaced. The stand-ins leave ``sys.modules`` when the block ends,
so a later ``import torchvision`` by the user still fails as usual; the library modules imported
meanwhile keep the inert objects they bound.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from contextlib import contextmanager


class _InertMeta(type):
    """Attribute reads on an inert class give further inert classes (``InterpolationMode.BILINEAR``)."""

    def __getattr__(cls, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _inert(f"{cls._stand_in_name}.{attr}", cls._stand_in_reason)

    def __call__(cls, *args, **kwargs):
        raise ImportError(f"{cls._stand_in_name}: {cls._stand_in_reason}")

    def __repr__(cls):
        return f"<stand-in {cls._stand_in_name}>"


def _inert(name: str, reason: str):
    # A class, not an instance, so that libraries may subclass it or use it in annotations at import.
    return _InertMeta(name.rsplit(".", 1)[-1], (), {"_stand_in_name": name, "_stand_in_reason": reason})


class _StandInModule(types.ModuleType):
    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        value = _inert(f"{self.__name__}.{attr}", self._stand_in_reason)
        setattr(self, attr, value)
        return value


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, reasons: dict):
        self.reasons = reasons

    def _root(self, fullname):
        return fullname.split(".", 1)[0]

    def find_spec(self, fullname, path=None, target=None):
        if self._root(fullname) in self.reasons:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StandInModule(spec.name)
        module._stand_in_reason = self.reasons[self._root(spec.name)]
        module.__path__ = []
        return module

    def exec_module(self, module):
        return None


def is_installed(name: str) -> bool:
    if name in sys.modules and not isinstance(sys.modules[name], _StandInModule):
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@contextmanager
def stand_ins(reasons: dict, provided: dict | None = None):
    """Within the block, each top-level module of ``reasons`` (name -> why d2m-bench never calls it)
    that is not installed imports as an inert package; ``provided`` maps dotted names
    (``"torchaudio.compliance.kaldi.get_mel_banks"``) to real objects set on those stand-ins.
    Yields the set of names that were stood in (empty when all are installed)."""
    absent = {name: why for name, why in reasons.items() if not is_installed(name)}
    finder = _Finder(absent)
    before = set(sys.modules)
    if absent:
        sys.meta_path.insert(0, finder)
    try:
        for dotted, obj in (provided or {}).items():
            module_name, _, attr = dotted.rpartition(".")
            if module_name.split(".", 1)[0] in absent:
                setattr(importlib.import_module(module_name), attr, obj)
        yield set(absent)
    finally:
        if absent:
            sys.meta_path.remove(finder)
            for name in set(sys.modules) - before:
                if isinstance(sys.modules[name], _StandInModule):
                    del sys.modules[name]
