"""Compile librosa's numba kernels into numba's on-disk cache, once per install.

librosa compiles its numba kernels when its modules are first imported (eagerly, for every
signature) and keeps them in ``__pycache__`` beside its sources. On a new install that first
import costs tens of seconds, which would otherwise land on the first ``d2m-bench eval``; the
Makefile and the wheel check run ``python -m d2m_bench.features.kernels`` right after installing.
Running it again loads the cached kernels (about a second).
"""
from __future__ import annotations

import time


def compile_kernels() -> float:
    """Import the librosa modules eval uses and run each detector once; returns the seconds taken."""
    import numpy as np

    from .events import detect

    start = time.perf_counter()
    y = np.random.default_rng(0).normal(size=22050).astype("float32")
    for detector in ({"kind": "onset", "hop_length": 512, "pre_max": 1, "post_max": 1, "pre_avg": 1, "post_avg": 1,
                      "wait": 1, "delta": 0.2, "backtrack": False, "normalize": True},
                     {"kind": "beat", "hop_length": 512, "tightness": 100, "trim": True}):
        detect(y, 22050, detector)
    return time.perf_counter() - start


if __name__ == "__main__":
    print(f"librosa kernels ready ({compile_kernels():.1f} s)")
