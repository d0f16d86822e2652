"""d2m-bench: evaluation toolkit for music generated from dance videos.

The public API is imported lazily so that the CLI starts fast (no librosa or torch at import).
The orchestration module is ``d2m_bench.evaluation``; ``d2m_bench.evaluate`` is the function,
whatever has been imported before (a submodule of the same name would shadow it).
"""
__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "load_protocol", "available_protocols", "aggregate", "EvalResult", "Protocol"]

_LAZY = {
    "evaluate": ("evaluation", "evaluate"),
    "load_protocol": ("protocol", "load_protocol"),
    "available_protocols": ("protocol", "available_protocols"),
    "aggregate": ("mos.aggregate", "aggregate"),
    "EvalResult": ("results.result", "EvalResult"),
    "Protocol": ("protocol", "Protocol"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'd2m_bench' has no attribute {name!r}")
    from importlib import import_module

    module, attr = _LAZY[name]
    value = getattr(import_module(f".{module}", __name__), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
