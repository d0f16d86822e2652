"""CMT's video-rhythm inputs: flow magnitude of a known translation, visual beats and tempo."""
import numpy as np
import pytest

from d2m_bench.baselines.video_rhythm import cmt_metadata, flow_magnitudes, impact_envelope, visual_beats, visual_tempo


def stop_and_go(fps=30, period=15, seconds=10):
    """Flow magnitude |sin(pi t / period)|: motion that stops every ``period`` frames."""
    t = np.arange(int(fps * seconds))
    return np.abs(np.sin(np.pi * t / period))


def test_flow_magnitude_of_a_known_translation():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (120, 200)), (0, 0), 2)
    tex = ((tex - tex.min()) / np.ptp(tex) * 255).astype(np.uint8)
    for dx, dy in [(2, 0), (0, 3), (2, 2)]:
        frames = [np.roll(np.roll(tex, dx * i, axis=1), dy * i, axis=0) for i in range(4)]
        # mean |flow| over both components: (|dx| + |dy|) / 2 (the wrapped border is a few pixels)
        assert np.allclose(flow_magnitudes(frames), (dx + dy) / 2, atol=0.05)
    still = [tex, tex, tex]
    assert np.allclose(flow_magnitudes(still), 0.0, atol=1e-3)


def test_impact_envelope_is_rectified_deceleration():
    assert np.allclose(impact_envelope([1.0, 3.0, 1.0, 0.5, 2.0]), [0, 0, 2.0, 0.5, 0])


def test_visual_beats_sit_where_motion_stops_and_tempo_is_their_rate():
    fps, period = 30, 15  # a stop every 0.5 s: 120 bpm
    flow = stop_and_go(fps, period)
    times, weights = visual_beats(flow, fps=fps)
    stops = np.arange(period, len(flow), period)
    # flow index t is the motion from frame t to t + 1: the stop at index t is reached at frame t + 1
    assert np.allclose(times, (stops + 1) / fps)
    assert np.all(weights > 0.9)
    assert visual_tempo(flow, fps=fps) == pytest.approx(120.0, rel=0.03)
    slow = stop_and_go(fps, 20)  # 90 bpm
    assert visual_tempo(slow, fps=fps) == pytest.approx(90.0, rel=0.03)
    assert visual_beats(np.zeros(50), fps=fps)[0].size == 0


def test_cmt_metadata_bars_and_ticks():
    fps = 30
    meta = cmt_metadata(stop_and_go(fps, 15, seconds=8), fps=fps)
    tempo = meta["tempo"]
    for b in meta["vbeats"]:
        i = round(b["start_time"] / 60 * tempo * 4)  # sixteenth index as CMT computes it
        assert (b["bar"], b["tick"]) == (i // 16, i % 16)
    fpb = round(fps * 240 / tempo)  # frames per bar: 60 at 120 bpm
    assert len(meta["flow_magnitude_per_bar"]) == -(-len(meta["flow_magnitude"]) // fpb)
    assert meta["duration"] == pytest.approx(8.0 + 1 / fps)
