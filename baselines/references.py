"""Reference systems: an upper bound, a "random" music bound, two floors and a rhythm oracle.

- ground-truth: the segment's own music (upper bound of every paired metric);
- shuffled-gt: the music of another segment of the same split, chosen by a seeded derangement
  (no segment keeps its own music): right genre statistics, wrong timing;
- silence and white-noise (seeded, std 0.1, i.e. -20 dBFS RMS): sanity floors;
- metronome: a 30-ms 1-kHz click at every kinematic beat of the segment's 3-D joints
  (FACT's definition: strict minima of the summed joint speed over +-10 frames), which shows
  how much a beat metric rewards rhythm alone.
"""
from __future__ import annotations

import zlib

import numpy as np

from d2m_bench.io.audio import load_audio
from d2m_bench.synth.render import fit_length

from .base import Baseline, RunContext
from d2m_bench.data.dataset import Segment

NOISE_STD = 0.1


def derangement(n: int, seed: int) -> np.ndarray:
    """A uniformly random cyclic permutation (Sattolo's algorithm): p[i] != i for every i."""
    if n < 2:
        raise ValueError("a derangement needs at least two items")
    rng = np.random.default_rng(seed)
    p = np.arange(n)
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))  # j < i: what makes it a single cycle
        p[i], p[j] = p[j], p[i]
    return p


def segment_rng(seed: int, segment_id: str) -> np.random.Generator:
    """A generator that depends on the seed and the id only, not on the order of segments."""
    return np.random.default_rng([int(seed), zlib.crc32(segment_id.encode())])


def metronome(beat_times, *, sr: int, length: int, freq: float = 1000.0, click_seconds: float = 0.03):
    """Clicks (decaying sine bursts, peak 0.9) starting exactly at ``beat_times`` seconds."""
    from d2m_bench.synth.synthetic import click_track

    if len(beat_times) == 0:
        return np.zeros(length, np.float32)
    return fit_length(click_track(beat_times, sr=sr, duration=length / sr, freq=freq,
                                  click_seconds=click_seconds), length)


def kinematic_beat_times(joints, *, fps: float, order: int = 10):
    """Seconds of FACT kinematic beats of (T, J, 3) joints (frame index / fps)."""
    from d2m_bench.metrics.alignment import kinematic_beats_fact

    return kinematic_beats_fact(joints, order=order) / float(fps)


def resampling(ctx: RunContext) -> dict:
    """Provenance of how gt audio reaches the protocol's rate (eval resamples the gt the same way)."""
    native = int(ctx.dataset.info.sample_rate)
    if native == ctx.sr:
        return {"resampled": None}
    return {"resampled": f"{native} Hz -> {ctx.sr} Hz ({ctx.resample})"}


class GroundTruth(Baseline):
    name = "ground-truth"
    summary = "The segment's own music (upper bound)."
    columns = ("audio",)

    def prepare(self, ctx: RunContext) -> dict:
        return resampling(ctx)

    def segment(self, ctx: RunContext, seg: Segment, length: int):
        y, _ = load_audio(ctx.path(seg, "audio"), sr=ctx.sr, res_type=ctx.resample)
        return fit_length(y, length), {"source": seg.segment_id}


class ShuffledGroundTruth(Baseline):
    name = "shuffled-gt"
    summary = "Music of another segment of the split (seeded derangement)."
    columns = ("audio",)

    def prepare(self, ctx: RunContext) -> dict:
        if len(ctx.segments) < 2:
            from d2m_bench.errors import UserError

            raise UserError(f"shuffled-gt needs at least two segments in split '{ctx.split}'", ctx.dataset.root)
        perm = derangement(len(ctx.segments), ctx.seed)
        ids = [s.segment_id for s in ctx.segments]
        self._source = {ids[i]: ctx.segments[perm[i]] for i in range(len(ids))}
        return {"permutation": "Sattolo cyclic derangement over the split's segments in manifest order",
                **resampling(ctx)}

    def segment(self, ctx: RunContext, seg: Segment, length: int):
        src = self._source[seg.segment_id]
        y, _ = load_audio(ctx.path(src, "audio"), sr=ctx.sr, res_type=ctx.resample)
        return fit_length(y, length), {"source": src.segment_id}


class Silence(Baseline):
    name = "silence"
    summary = "All-zero audio (floor)."

    def segment(self, ctx: RunContext, seg: Segment, length: int):
        return np.zeros(length, np.float32), {}


class WhiteNoise(Baseline):
    name = "white-noise"
    summary = f"Gaussian white noise, std {NOISE_STD}, seeded per segment id (floor)."

    def segment(self, ctx: RunContext, seg: Segment, length: int):
        y = segment_rng(ctx.seed, seg.segment_id).normal(0.0, NOISE_STD, length)
        return y.astype(np.float32), {"std": NOISE_STD}


class Metronome(Baseline):
    name = "metronome"
    summary = "Clicks at the kinematic beats (FACT) of the segment's 3-D joints (rhythm-only oracle)."
    columns = ("joints3d",)

    def prepare(self, ctx: RunContext) -> dict:
        return {"beats": "FACT kinematic beats, order 10, of joints3d", "joints3d_fps": ctx.dataset.info.joints3d_fps,
                "click": "1 kHz, 30 ms, exponential decay, peak 0.9"}

    def segment(self, ctx: RunContext, seg: Segment, length: int):
        joints = np.load(ctx.path(seg, "joints3d"))
        times = kinematic_beat_times(joints, fps=ctx.dataset.info.joints3d_fps)
        times = times[times < length / ctx.sr]
        return metronome(times, sr=ctx.sr, length=length), {"beats": len(times),
                                                            "beat_times": [round(float(t), 4) for t in times]}
