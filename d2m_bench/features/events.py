"""Per-file event detection (onsets or beats) with the content-hash cache.

A cache entry stores ``[n_samples, loaded_samples, native_samples, native_sr, channels,
t_1, ..., t_k]`` (float64): the clip length after loading, resampling and the length policy,
the length before the policy, the file's own frame count, sample rate and channel count, then
the event times in seconds. The key covers the file's bytes, every parameter that affects
either, the versions of the code that computed them and the entry layout (`CACHE_SCHEMA`).
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np

from ..io.audio import AudioInfo, admit_audio, read_audio
from ..io.cache import FileCache
from ..metrics.beats import N_FFT, beat_times, onset_times
from ..versions import package_versions

ONSET_KEYS = ("hop_length", "pre_max", "post_max", "pre_avg", "post_avg", "wait", "delta", "backtrack", "normalize")
# Optional [beats.onset] keys: absent means librosa >= 0.10's behaviour, so protocols written
# before they existed keep their hash. pad_mode: STFT centring pad ("reflect" = librosa 0.7.2).
OPTIONAL_ONSET_KEYS = ("pad_mode",)
BEAT_KEYS = ("hop_length", "tightness", "trim")
# The onset-strength analysis behind every detector, fixed in code (librosa's defaults, which
# every published variant used); echoed in each eval result's protocol block.
FIXED_ANALYSIS = {"onset_strength": {"n_fft": N_FFT, "window": "hann", "center": True,
                                     "pad_mode": "constant unless beats.onset.pad_mode says otherwise",
                                     "n_mels": 128, "fmax": "sr/2", "power_to_db": {"ref": 1.0, "amin": 1e-10, "top_db": 80.0},
                                     "lag": 1, "max_size": 1, "aggregate": "mean"},
                  "onset_units": "time = frame * hop_length / sr"}
# Bump when the entry layout above or the meaning of a stored number changes.
# 3: compressed audio decoded as ffmpeg/librosa.load decode it (no AAC padding, 16-bit values).
CACHE_SCHEMA = 3
_HEAD = 5  # numbers before the event times


@lru_cache(maxsize=1)
def code_versions() -> dict:
    """Versions of everything between the file's bytes and the event times (part of the key):
    a librosa or numpy upgrade can move an onset, so its entries must not be reused."""
    from .. import __version__

    return {"d2m-bench": __version__, **package_versions(("librosa", "numpy", "soxr", "soundfile"))}


def detector_config(beats: dict) -> dict:
    """The detector a protocol's [beats] table asks for, with only the parameters it uses."""
    if beats.get("detector", "librosa") != "librosa":  # a trained tracker (issue 21): its own module
        from .madmom_events import detector_config as madmom_config

        return madmom_config(beats)
    kind = beats.get("events", "onset") if beats.get("variant") == "tolerance" else "onset"
    if kind == "onset":
        src = beats.get("onset", {})
        return {"kind": "onset", **{k: src[k] for k in ONSET_KEYS + OPTIONAL_ONSET_KEYS if k in src}}
    if kind == "beat":
        src = beats.get("beat_track", {})
        return {"kind": "beat", **{k: src[k] for k in BEAT_KEYS if k in src}}
    raise ValueError(f"unknown event detector '{kind}' (onset or beat)")


def detect(y, sr, detector: dict) -> np.ndarray:
    params = {k: v for k, v in detector.items() if k != "kind"}
    if detector["kind"].startswith("madmom"):
        from .madmom_events import detect as madmom_detect

        return madmom_detect(y, sr, detector)
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


def _plausible(hit, sr: int, target_len) -> bool:
    """Whether a cache entry could have been written by ``file_events`` for this key: whole,
    non-negative counts, the policy's length, sorted event times inside the clip. Anything
    else (a damaged or forged entry) is recomputed instead of scored."""
    if len(hit) < _HEAD:
        return False
    head, times = hit[:_HEAD].tolist(), hit[_HEAD:]  # Python floats: 5 numbers, cheaper than numpy calls
    n, loaded, native, native_sr, channels = head
    if any(v != round(v) or v < 0 for v in head) or native_sr < 1 or channels < 1:
        return False
    if n != (loaded if target_len is None else target_len):
        return False
    # sorted, the first >= 0 and the last inside the clip: every time is
    return not len(times) or bool(times[0] >= 0 and times[-1] <= n / sr + 1.0 and (times[1:] >= times[:-1]).all())


_CONFIGS = {}  # (id(audio), id(detector), target_len) -> (audio, detector, config)


def _config(audio: dict, detector: dict, target_len) -> dict:
    """The cache key's configuration; one object per (audio, detector, length), so that the
    cache computes its canonical JSON once per run instead of once per file."""
    known = _CONFIGS.get((id(audio), id(detector), target_len))
    if known is None or known[0] is not audio or known[1] is not detector:
        config = {"sr": audio["sample_rate"], "resample": audio.get("resample", "soxr_hq"),
                  "mono": audio.get("mono", "mean"), "target_len": target_len, "detector": detector, "n_fft": N_FFT,
                  "schema": CACHE_SCHEMA, "versions": code_versions()}
        if len(_CONFIGS) > 4096:  # one entry per distinct clip length: bounded all the same
            _CONFIGS.clear()
        known = _CONFIGS[(id(audio), id(detector), target_len)] = (audio, detector, config)
    return known[2]


def file_events(path, *, audio: dict, detector: dict, target_len: int | None = None,
                cache: FileCache | None = None, source=None):
    """(n_samples, loaded_samples, event_times, length_action, cached, AudioInfo) for one file.

    ``audio`` is the protocol's [audio] table (sample_rate, resample, mono); ``target_len``
    applies the trim/pad length policy before detection; ``loaded_samples`` is the length
    after resampling and before the policy. A cache that cannot be written is switched off
    for the rest of this process (the caller checks writability once, up front). ``source``
    (a `d2m_bench.features.worker.FileSource` of ``path``) shares one decode and one content
    hash with the other sections of eval's worker pass.
    """
    sr = audio["sample_rate"]
    config = _config(audio, detector, target_len)
    digest = admit_audio(path, audio, source)  # declared length checked before any decode; the hash is recorded
    key = None
    if cache is not None and cache.enabled:
        key = cache.key(digest, config)
        hit = cache.get(key, ndim=1)
        if hit is not None and _plausible(hit, sr, target_len):
            n, loaded, native, native_sr, channels = (int(v) for v in hit[:_HEAD])
            info = AudioInfo(native_sr, channels, native, native_sr != sr, channels > 1, digest)
            return n, loaded, hit[_HEAD:], length_action(loaded, n), True, info
    if source is not None:
        y, _, info = source.prepared(sr, mix=config["mono"], res_type=config["resample"])
    else:
        y, _, info = read_audio(path, sr, mix=config["mono"], res_type=config["resample"])
    info = replace(info, sha256=digest)
    loaded = len(y)
    y = fit_length(y, target_len)
    times = detect(y, sr, detector)
    if key is not None:
        try:
            cache.put(key, np.concatenate([[len(y), loaded, info.native_samples, info.native_sr, info.channels], times]))
        except OSError:
            cache.enabled = False  # full disk or a directory gone read-only mid-run: go on uncached
    return len(y), loaded, times, length_action(loaded, len(y)), False, info
