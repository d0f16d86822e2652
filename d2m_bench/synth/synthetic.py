"""Synthetic signals with known answers, and tiny built datasets for tests and the demo.

Everything here is deterministic given ``seed``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.audio import write_audio
from ..data.dataset import GENRES, DatasetInfo, Segment, write_manifest


def click_track(onset_times, *, sr=22050, duration=2.0, freq=1000.0, click_seconds=0.03,
                noise=0.0, seed=0, tone=None):
    """Decaying sine bursts starting exactly at ``onset_times`` (seconds), float32.

    ``tone`` adds a steady sinusoid of that frequency underneath (a sustained note gives the
    onset detector something that is not an onset). ``noise`` is the std of white noise.
    """
    n = int(round(duration * sr))
    y = np.zeros(n, np.float64)
    m = int(click_seconds * sr)
    t = np.arange(m) / sr
    burst = np.sin(2 * np.pi * freq * t) * np.exp(-t / (click_seconds / 5))
    for onset in onset_times:
        i = int(round(onset * sr))
        if 0 <= i < n:
            k = min(m, n - i)
            y[i:i + k] += burst[:k]
    if tone is not None:
        y += 0.05 * np.sin(2 * np.pi * tone * np.arange(n) / sr)
    if noise:
        y += np.random.default_rng(seed).normal(0, noise, n)
    return (0.9 * y / max(1e-9, np.abs(y).max())).astype(np.float32)


def random_onsets(rng, duration, rate=3.0, min_gap=0.12):
    """Poisson-like onset times with a minimum gap (so each is detectable)."""
    times, t = [], float(rng.uniform(0.05, 0.4))
    while t < duration - 0.05:
        times.append(round(t, 4))
        t += max(min_gap, float(rng.exponential(1.0 / rate)))
    return times


def joints_with_beats(beat_frames, *, frames=120, joints=17, seed=0):
    """3-D joint trajectories whose speed drops to zero exactly at ``beat_frames``.

    Each joint moves along a fixed random direction with displacement
    ``sum_k 1 - cos`` bumps between consecutive beats, so the kinetic envelope has local
    minima at the beats (the dance "stops on the beat").
    """
    rng = np.random.default_rng(seed)
    edges = [0, *sorted(int(b) for b in beat_frames), frames - 1]
    speed = np.zeros(frames)
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            speed[a:b + 1] = np.maximum(speed[a:b + 1], np.sin(np.pi * (np.arange(b - a + 1) / (b - a))))
    pos = np.cumsum(speed)[:, None, None] * 0.01
    dirs = rng.normal(size=(1, joints, 3))
    base = rng.normal(size=(1, joints, 3))
    return (base + pos * dirs).astype(np.float32)


def make_tiny_dataset(root, *, kind="aistpp", n_train=6, n_test=4, sr=22050, seconds=2.0,
                      seed=0, visual_dim=2048):
    """Write a small dataset in the built format (see d2m_bench.data.dataset) and return its path.

    Audio = click tracks at random onsets; motion/keypoints/joints3d = trajectories whose
    kinematic beats sit on the audio onsets; visual = random vectors. AIST++-like ids and
    genres for ``kind="aistpp"``; TikTok-like ids, BODY_25 keypoints and no genre otherwise.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    aist = kind == "aistpp"
    motion_fps = 60 if aist else 30
    frames = int(seconds * motion_fps)
    kp_frames = int(seconds * 30)
    segments = []
    for split, count in (("train", n_train), ("test", n_test)):
        for i in range(count):
            genre = GENRES[(i + (0 if split == "train" else 3)) % len(GENRES)] if aist else ""
            if aist:
                seq = f"{genre}_sBM_c01_d{i % 30 + 1:02d}_m{genre[1:]}{i % 6}_ch{1 if split == 'train' else 2:02d}"
            else:
                seq = f"{i % 15:06d}_{i % 5}_{100 + i + (0 if split == 'train' else 200)}"
            sid = f"{seq}_seg{i % 3 + 1}"
            onsets = random_onsets(rng, seconds)
            y = click_track(onsets, sr=sr, duration=seconds, freq=float(rng.uniform(400, 2000)), seed=i)
            beat_frames = [int(round(t * motion_fps)) for t in onsets]
            joints = joints_with_beats(beat_frames, frames=frames, seed=i)
            rel = {c: f"{c}/{split}/{sid}.{'wav' if c == 'audio' else 'npy'}"
                   for c in ("audio", "motion", "keypoints", "joints3d", "visual")}
            write_audio(root / rel["audio"], y, sr)
            motion = (rng.normal(size=(frames, 219)) if aist else rng.normal(size=(frames, 75))).astype(np.float32)
            n_kp = 17 if aist else 25
            kp = np.concatenate([rng.uniform(0, 1, (kp_frames, n_kp, 2)), np.ones((kp_frames, n_kp, 1))], -1)
            for col, arr in (("motion", motion), ("keypoints", kp.astype(np.float32)), ("joints3d", joints),
                             ("visual", rng.normal(size=visual_dim).astype(np.float32))):
                (root / rel[col]).parent.mkdir(parents=True, exist_ok=True)
                np.save(root / rel[col], arr)
            music_id = f"m{genre[1:]}{i % 6}" if aist else f"{i % 85}"
            segments.append(Segment(sid, split, seq, genre, music_id, 0.0, seconds, **rel))
    info = DatasetInfo(name=kind, sample_rate=sr, segment_seconds=seconds, motion_fps=motion_fps,
                       motion_shape=[frames, 219 if aist else 75],
                       keypoints_format="coco17" if aist else "body25", keypoints_fps=30.0,
                       joints3d_format="coco17" if aist else "", joints3d_fps=float(motion_fps),
                       visual_extractor="random", visual_dim=visual_dim,
                       builder={"name": "synthetic.make_tiny_dataset", "seed": seed})
    write_manifest(root, segments, info)
    return root
