"""Motion-music beat alignment: FACT BeatAlign and Bailando BAS, kept apart.

Frames: the music is analysed at sr = fps * hop (30720 Hz with hop 512 for 60-fps motion), so
one onset-envelope frame is one motion frame and distances are in motion frames.

FACT (Li et al., ICCV 2021; google-research/mint tools/calculate_beat_scores.py):
    e_t = sum_j ||p_t,j - p_{t-1},j||  (e_0 = 0), kinematic beats = strict local minima of e
    over +-order frames (order 10); BA = (1/|B_k|) sum_{t in B_k} exp(-min_s (t - s)^2 / (2 sigma^2))
    over kinematic beats t and music beats s < T (mint cuts the music features to the motion's
    T frames), sigma = 3 frames; 0 when there is no kinematic beat.
Bailando (Siyao et al., CVPR 2022; utils/beat_align_score.py):
    v_i = mean_j ||p_{i+1},j - p_i,j|| (index i = displacement from frame i to i+1, one frame
    earlier than FACT's), gaussian smoothing (sigma 5 frames), beats = local minima (order 1);
    music beats at or beyond len(v) are dropped; BAS = (1/|B_m|) sum_{s in B_m}
    exp(-min_t (t - s)^2 / (2 sigma^2)) over MUSIC beats, sigma^2 = 9 (i.e. exp(-d^2 / 18)).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import gaussian_filter1d
from scipy.signal import argrelextrema


def kinetic_envelope(joints: ArrayLike, *, reduce: str = "sum", pad_first: bool = True) -> np.ndarray:
    """Per-frame joint displacement of ``joints`` (T, J, 3).

    ``reduce="sum", pad_first=True`` is FACT's envelope (length T, e_0 = 0);
    ``reduce="mean", pad_first=False`` is Bailando's velocity (length T - 1).
    """
    p = np.asarray(joints, dtype=np.float64)
    if p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"joints must be (frames, joints, 3), got {p.shape}")
    step = np.linalg.norm(np.diff(p, axis=0), axis=-1)
    env = step.sum(1) if reduce == "sum" else step.mean(1)
    return np.concatenate([[0.0], env]) if pad_first else env


def kinematic_beats_fact(joints: ArrayLike, *, order: int = 10) -> np.ndarray:
    """Frame indices of FACT kinematic beats (strict minima of the summed envelope over +-order)."""
    return argrelextrema(kinetic_envelope(joints, reduce="sum", pad_first=True), np.less, order=order)[0]


def kinematic_beats_bailando(joints: ArrayLike, *, sigma: float = 5.0, order: int = 1) -> tuple[np.ndarray, int]:
    """Bailando kinematic beats (indices into the T - 1 velocity) and the velocity length."""
    v = gaussian_filter1d(kinetic_envelope(joints, reduce="mean", pad_first=False), sigma)
    return argrelextrema(v, np.less, order=order)[0], len(v)


def music_beats(y: ArrayLike, *, sr: int = 30720, hop_length: int = 512, start_bpm: float | None = None,
                tightness: float = 100.0, percussive: bool = False, aggregate: str = "mean") -> np.ndarray:
    """Music beat frames by ``librosa.beat.beat_track`` on the onset-strength envelope.

    FACT: plain envelope, ``start_bpm`` = the AIST++ music tempo, tightness 100. Bailando:
    envelope of the HPSS percussive part with median aggregation, librosa defaults otherwise.
    """
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if percussive:
        y = librosa.effects.percussive(y)
    agg = {"mean": np.mean, "median": np.median}[aggregate]
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop_length, aggregate=agg)
    kw = {} if start_bpm is None else {"start_bpm": float(start_bpm)}
    _, beats = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=hop_length,
                                       tightness=tightness, **kw)
    return np.asarray(beats, dtype=int)


def _nearest_sq(src, dst):
    """min over dst of (s - d)^2 for each s in src."""
    src = np.asarray(src, dtype=np.float64)[:, None]
    dst = np.asarray(dst, dtype=np.float64)[None, :]
    return ((src - dst) ** 2).min(1)


def beat_align_fact(kinematic_beats: ArrayLike, music_beats_: ArrayLike, *, sigma: float = 3.0,
                    length: int | None = None) -> float:
    """FACT BeatAlign in [0, 1]: mean over kinematic beats (0 if none; 0 if no music beat).

    ``length`` = the motion's frame count T: music beats at frames >= T are dropped, as mint
    cuts the music features to the motion (``audio_feature[:T]``) before scoring.
    """
    if length is not None:
        music_beats_ = np.asarray(music_beats_)
        music_beats_ = music_beats_[music_beats_ < length]
    if len(kinematic_beats) == 0 or len(music_beats_) == 0:
        return 0.0
    return float(np.mean(np.exp(-_nearest_sq(kinematic_beats, music_beats_) / (2 * sigma ** 2))))


def beat_align_bailando(kinematic_beats: ArrayLike, music_beats_: ArrayLike, *, sigma: float = 3.0,
                        length: int | None = None) -> float:
    """Bailando BAS in [0, 1]: mean over music beats (< ``length`` if given); NaN without a music
    beat (undefined), 0 without a kinematic beat."""
    mb = np.asarray(music_beats_)
    if length is not None:
        mb = mb[mb < length]
    if len(mb) == 0:
        return float("nan")
    if len(kinematic_beats) == 0:
        return 0.0
    return float(np.mean(np.exp(-_nearest_sq(mb, kinematic_beats) / (2 * sigma ** 2))))
