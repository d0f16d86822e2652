"""Dance2Music speed: seconds of compute per minute of dance (2 cores, this machine).

Composition = pose features + 1800 x 1800 dance matrix + beam search (width 50, 300 notes);
the full segment adds writing the MIDI and rendering 60 s with the pinned FluidSynth.
Run: .venv/bin/python -m pytest d2m_bench_tests/benchmarks/bench_baselines.py --benchmark-only -s
"""
import shutil
from pathlib import Path

import numpy as np
import pytest

from d2m_bench.baselines.symbolic import Dance2Music
from d2m_bench.synth.render import DEFAULT_SOUNDFONT, render_midi, write_notes_midi

MINUTE = 1800  # frames at 30 fps


def dance_keypoints(frames=MINUTE, seed=0):
    """COCO-17 keypoints of a smooth random dance (pixels, all joints detected)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, (1, 17, 2))
    rate = rng.uniform(0.5, 3.0, (1, 17, 2))
    xy = 300 + 80 * np.sin(2 * np.pi * rate * t / 30.0 + phase) + rng.normal(0, 2, (frames, 17, 2))
    return np.concatenate([xy, np.ones((frames, 17, 1))], -1).astype(np.float32)


@pytest.fixture
def composer():
    return Dance2Music(layout="coco17", fps=30.0, beam_width=50)


def test_dance2music_compose_per_minute(benchmark, composer):
    kp = dance_keypoints()
    notes, result, _ = benchmark.pedantic(lambda: composer.compose(kp), rounds=3, iterations=1)
    print(f"\ndance2music composition: {benchmark.stats.stats.mean:.2f} s per minute of dance "
          f"({len(result.states)} notes, {len(notes)} after merging, last-window r {result.reward:.3f})")
    assert len(result.states) == MINUTE // 6


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not Path(DEFAULT_SOUNDFONT).is_file(),
                    reason="fluidsynth / fluid-soundfont-gm not installed: apt-get install fluidsynth fluid-soundfont-gm")
def test_dance2music_full_minute_with_rendering(benchmark, composer, tmp_path):
    kp = dance_keypoints(seed=1)

    def full():
        notes, _, _ = composer.compose(kp)
        write_notes_midi(tmp_path / "m.mid", notes, qpm=75)
        return render_midi(tmp_path / "m.mid", sr=22050, length=60 * 22050)

    y = benchmark.pedantic(full, rounds=3, iterations=1)
    print(f"\ndance2music compose + render: {benchmark.stats.stats.mean:.2f} s per minute of dance")
    assert y.shape == (60 * 22050,) and np.abs(y).max() > 0


def per_candidate_search(D, beam_width=50, history=10, note_frames=6, n_states=5):
    """Upstream's loop structure: one upsampled music matrix and one Pearson r per candidate
    (ranked with the same explicit tie rule, so the two searches must agree)."""
    from d2m_bench.baselines.dance2music import rank, window_reward

    T = len(D)
    N = T // note_frames
    beams = [[2]]
    w_hist = int(T * history / N)
    for k in range(1, N):
        end = int(T * (k + 1) / N)
        window = D[max(0, end - w_hist):end, max(0, end - w_hist):end]
        cand = [b + [s] for b in beams for s in range(n_states)]
        rewards = [window_reward(window, c[-history:]) for c in cand]
        beams = [cand[i] for i in rank(rewards, beam_width)]
    return beams[0]


def test_dance2music_per_candidate_loop_per_minute(benchmark, composer):
    """The same search with a per-candidate loop, as upstream runs it (for the speed ratio)."""
    from d2m_bench.baselines import dance2music as d2m

    feats, _ = d2m.pose_features(dance_keypoints(), layout="coco17")
    D = d2m.dance_matrix(feats)
    states = benchmark.pedantic(lambda: per_candidate_search(D), rounds=1, iterations=1)
    fast = d2m.beam_search(D).states
    print(f"\nper-candidate loop: {benchmark.stats.stats.mean:.2f} s per minute of dance; "
          f"same melody as the block-sum search: {states == fast}")
    assert states == fast
