"""d2m-bench: evaluation toolkit for music generated from dance videos.

Heavy modules (librosa, torch) are imported lazily so that the CLI starts fast.
"""
__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "load_protocol"]


def __getattr__(name):
    if name == "evaluate":
        from .evaluate import evaluate

        return evaluate
    if name == "load_protocol":
        from .protocol import load_protocol

        return load_protocol
    raise AttributeError(name)
