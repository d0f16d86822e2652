"""Per-file event detection (onsets or beats) with the content-hash cache.

A cache entry stores ``[n_samples, native_samples, t_1, ..., t_k]`` (float64): the clip
length after loading, resampling and the length policy, the length before the policy, then
the event times in seconds. The key
covers the file's bytes and every parameter that affects either.
"""
from __future__ import annotations

import numpy as np

from .audio import load_audio
from .cache import FileCache, file_digest
from .metrics.beats import beat_times, onset_times

ONSET_KEYS = ("hop_length", "pre_max", "post_max", "pre_avg", "post_avg", "wait", "delta", "backtrack", "normalize")
BEAT_KEYS = ("hop_length", "tightness", "trim")


def detector_config(beats: dict) -> dict:
    """The detector a protocol's [beats] table asks for, with only the parameters it uses."""
    kind = beats.get("events", "onset") if beats.get("variant") == "tolerance" else "onset"
    if kind == "onset":
        src = beats.get("onset", {})
        return {"kind": "onset", **{k: src[k] for k in ONSET_KEYS if k in src}}
    if kind == "beat":
        src = beats.get("beat_track", {})
        return {"kind": "beat", **{k: src[k] for k in BEAT_KEYS if k in src}}
    raise ValueError(f"unknown event detector '{kind}' (onset or beat)")


def detect(y, sr, detector: dict) -> np.ndarray:
    params = {k: v for k, v in detector.items() if k != "kind"}
    if detector["kind"] == "onset":
        return np.asarray(onset_times(y, sr=sr, **params), dtype=np.float64)
    return beat_times(y, sr=sr, **params)


def fit_length(y, target: int | None):
    """Trim or zero-pad ``y`` to ``target`` samples."""
    if target is None or len(y) == target:
        return y
    if len(y) > target:
        return y[:target]
    return np.concatenate([y, np.zeros(target - len(y), y.dtype)])


def length_action(native: int, n: int) -> str:
    if native == n:
        return "none"
    return f"trimmed {native - n}" if native > n else f"padded {n - native}"


def file_events(path, *, audio: dict, detector: dict, target_len: int | None = None,
                cache: FileCache | None = None):
    """(n_samples, native_samples, event_times, length_action, cached) for one file.

    ``audio`` is the protocol's [audio] table (sample_rate, resample); ``target_len`` applies
    the trim/pad length policy before detection; ``native_samples`` is the length before it.
    """
    sr = audio["sample_rate"]
    config = {"sr": sr, "resample": audio.get("resample", "soxr_hq"), "mono": audio.get("mono", "mean"),
              "target_len": target_len, "detector": detector}
    key = None
    if cache is not None and cache.enabled:
        key = cache.key(file_digest(path), config)
        hit = cache.get(key)
        if hit is not None:
            n, native = int(hit[0]), int(hit[1])
            return n, native, hit[2:], length_action(native, n), True
    y, _ = load_audio(path, sr, res_type=config["resample"])
    native = len(y)
    y = fit_length(y, target_len)
    times = detect(y, sr, detector)
    if key is not None:
        cache.put(key, np.concatenate([[len(y), native], times]))
    return len(y), native, times, length_action(native, len(y)), False
