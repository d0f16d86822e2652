"""FACT BeatAlign and Bailando BAS: hand-checked values, beats from synthetic joints and clicks, the eval section."""
import math
import shutil

import numpy as np
import pytest

from d2m_bench.metrics import alignment as al
from d2m_bench.synth.synthetic import click_track, joints_with_beats, make_tiny_dataset


def test_scores_by_hand():
    assert al.beat_align_fact([30, 60, 90], [30, 60, 90]) == 1.0
    assert al.beat_align_bailando([30, 60, 90], [30, 60, 90]) == 1.0
    d = 4
    assert al.beat_align_fact([30 + d, 60 + d], [30, 60, 90]) == pytest.approx(math.exp(-d * d / 18))
    assert al.beat_align_bailando([30 + d, 60 + d, 90 + d], [30, 60, 90]) == pytest.approx(math.exp(-d * d / 18))
    # Directions differ: 1 kinematic beat on a music beat, 3 music beats.
    assert al.beat_align_fact([30], [30, 60, 90]) == 1.0
    assert al.beat_align_bailando([30], [30, 60, 90]) == pytest.approx((1 + 2 * math.exp(-900 / 18)) / 3)
    # FACT: no kinematic beat -> 0; Bailando: no music beat -> undefined, none kept below length
    assert al.beat_align_fact([], [30]) == 0.0
    assert math.isnan(al.beat_align_bailando([30], []))
    assert math.isnan(al.beat_align_bailando([30], [130], length=119))
    assert al.beat_align_fact([10], [30], sigma=5.0) == pytest.approx(math.exp(-400 / 50))


def test_kinematic_beats_of_synthetic_joints():
    j = joints_with_beats([30, 60, 90], frames=120)
    assert list(al.kinematic_beats_fact(j)) == [30, 60, 90]
    beats, length = al.kinematic_beats_bailando(j)
    # Bailando's velocity index i is the step i -> i+1: the stop at frame 30 is index 29.
    assert list(beats) == [29, 59, 89] and length == 119
    env = al.kinetic_envelope(j)
    assert env.shape == (120,) and env[0] == 0 and env[30] == pytest.approx(0, abs=1e-6)
    # strict minima over +-10 frames: two zero-speed stops 5 frames apart tie, so neither counts
    close = joints_with_beats([40, 45, 90], frames=120)
    assert list(al.kinematic_beats_fact(close)) == [90]
    assert list(al.kinematic_beats_fact(close, order=4)) == [40, 45, 90]


def test_music_beats_on_clicks():
    sr = 30720
    clicks = np.arange(0.25, 8.0, 0.5)  # 120 BPM
    y = click_track(clicks, sr=sr, duration=8.0)
    for kw in ({"start_bpm": 120.0}, {"percussive": True, "aggregate": "median"}):
        b = al.music_beats(y, sr=sr, **kw)
        frames = np.round(clicks * 60).astype(int)
        # every detected beat within 1 frame (16.7 ms) of a click; most clicks found
        assert len(b) >= len(clicks) - 2
        assert np.abs(b[:, None] - frames[None]).min(1).max() <= 1


def _eval(tmp_path, protocol="tolerance", **kw):
    from d2m_bench.evaluation import evaluate

    return evaluate(tmp_path / "pred", tmp_path / "gt", protocol=protocol, workers=1, **kw)


def _clips(tmp_path, ids, offsets_s, bpm=120.0):
    """gt: clicks on a 120-BPM grid; pred: the same grid shifted by offsets_s[i]; motion stops on the gt grid."""
    from d2m_bench.io.audio import write_audio

    motion = tmp_path / "motion"
    motion.mkdir()
    grid = np.arange(0.25, 2.0, 60 / bpm)
    for sid, off in zip(ids, offsets_s):
        write_audio(tmp_path / "gt" / f"{sid}.wav", click_track(grid, sr=22050, duration=2.0), 22050)
        write_audio(tmp_path / "pred" / f"{sid}.wav", click_track(grid + off, sr=22050, duration=2.0), 22050)
        np.save(motion / f"{sid}.npy", joints_with_beats(np.round(grid * 60).astype(int), frames=120))
    return motion


def test_section_orders_aligned_above_offset(tmp_path):
    ids = ["gPO_sBM_c01_d11_mPO1_ch02_seg1", "gLO_sBM_c01_d15_mLO2_ch02_seg1"]  # mPO1 90 BPM prior, mLO2 100
    motion = _clips(tmp_path, ids, [0.0, 0.15])
    sec = _eval(tmp_path, options={"motion": str(motion)}).sections["alignment"]
    assert sec["status"] == "ok"
    rows = sec["per_clip"]
    aligned, shifted = rows[ids[0]], rows[ids[1]]
    # aligned pred = gt. Kinematic beats at frames 15, 45, 75, 105; beat_track on the 2-s clip
    # returns 46, 76, 106 (onset strength peaks one frame after a click; the first beat falls
    # in its warm-up). FACT: (0 + 3 exp(-1/18)) / 4. Bailando's kinematic beats are a frame
    # earlier (velocity index) and smoothing moves the last one near the clip's end, so each
    # music beat is 2 or 3 frames off.
    assert aligned["music_beats"] == 3 and aligned["kinematic_beats_fact"] == 4
    assert aligned["beat_align_fact"] == aligned["beat_align_fact_gt"] == pytest.approx(0.75 * math.exp(-1 / 18))
    kb, length = al.kinematic_beats_bailando(np.load(motion / f"{ids[0]}.npy"))
    assert aligned["beat_align_bailando"] == pytest.approx(al.beat_align_bailando(kb, [46, 76, 106], length=length))
    assert math.exp(-9 / 18) <= aligned["beat_align_bailando"] <= math.exp(-4 / 18) + 1e-12
    # 0.15 s = 9 frames late: exp(-81/18) ~ 0.011 up to a frame of beat-tracker jitter
    assert shifted["beat_align_fact"] < math.exp(-64 / 18) and shifted["beat_align_fact_gt"] > 0.7
    assert shifted["beat_align_bailando"] < math.exp(-64 / 18)
    agg = sec["aggregate"]
    assert agg["beat_align_fact"]["n"] == 2 and agg["beat_align_fact"]["unit"] == "fraction"
    assert agg["beat_align_fact"]["value"] == pytest.approx((aligned["beat_align_fact"] + shifted["beat_align_fact"]) / 2)


def test_section_from_dataset_and_skips(tmp_path):
    root = make_tiny_dataset(tmp_path / "ds", n_train=1, n_test=3)
    from d2m_bench.data.dataset import Dataset

    ds = Dataset(root)
    for s in ds.segments("test"):
        for d in ("gt", "pred"):
            (tmp_path / d).mkdir(exist_ok=True)
            shutil.copy(root / s.audio, tmp_path / d / f"{s.segment_id}.wav")
    sec = _eval(tmp_path, data=root).sections["alignment"]
    assert sec["status"] == "ok" and len(sec["per_clip"]) == 3
    assert sec["meta"]["sr"] == 30720
    sec = _eval(tmp_path).sections["alignment"]
    assert sec["status"] == "skipped" and "no motion given" in sec["reason"]
    tt = make_tiny_dataset(tmp_path / "tt", kind="tiktok", n_train=1, n_test=1)
    sec = _eval(tmp_path, data=tt).sections["alignment"]
    assert sec["status"] == "skipped" and "no clip has motion" in sec["reason"]  # 30-fps ids do not match
