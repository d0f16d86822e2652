"""Reference systems: metronome clicks at known kinematic beats, derangement, seeded noise, gt copies."""
import json

import numpy as np
import pytest
import soundfile as sf

from d2m_bench import baselines
from d2m_bench.baselines.references import derangement, kinematic_beat_times, metronome
from d2m_bench.io.audio import load_audio
from d2m_bench.data.dataset import Dataset
from d2m_bench.synth.synthetic import joints_with_beats, make_tiny_dataset

SR = 22050


def click_starts(y, threshold=1e-4, gap=200):
    """Sample index where each click begins: a burst is sin(2 pi f n / sr) from its onset n0, so
    its first non-zero sample is n0 + 1; bursts are separated by > ``gap`` silent samples."""
    idx = np.flatnonzero(np.abs(y) > threshold)
    starts = [idx[0]] + [b for a, b in zip(idx[:-1], idx[1:]) if b - a > gap]
    return np.array(starts) - 1


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("refs") / "d", n_train=1, n_test=5)


def test_kinematic_beats_and_clicks_land_on_the_known_frames():
    beats = [20, 50, 80]  # 60 fps: 1/3 s, 5/6 s, 4/3 s
    times = kinematic_beat_times(joints_with_beats(beats, frames=120), fps=60.0)
    assert np.allclose(times, np.array(beats) / 60.0)
    y = metronome(times, sr=SR, length=2 * SR)
    assert y.shape == (2 * SR,)
    assert np.array_equal(click_starts(y), np.round(np.array(beats) / 60.0 * SR).astype(int))
    assert np.all(metronome([], sr=SR, length=100) == 0)


def test_metronome_run_writes_clicks_at_each_segments_beats(tmp_path, dataset):
    beats = {}
    ds = Dataset(dataset)
    for i, seg in enumerate(ds.segments("test")):  # replace the joints with ones whose beats we set
        beats[seg.segment_id] = [15 + 7 * i, 55 + 3 * i, 95]
        np.save(ds.root / seg.joints3d, joints_with_beats(beats[seg.segment_id], frames=120, seed=i))
    doc = baselines.run_baseline(baselines.get("metronome"), dataset, tmp_path / "out", progress=False)
    for sid, frames in beats.items():
        y, sr = sf.read(tmp_path / "out" / f"{sid}.wav", dtype="float32")
        expected = np.round(np.array(frames) / 60.0 * SR).astype(int)
        assert np.abs(click_starts(y) - expected).max() <= 1  # PCM_16 can move the first audible sample
        assert doc["segments"][sid]["beat_times"] == [round(f / 60.0, 4) for f in frames]


def test_derangement_has_no_fixed_point_and_is_seeded():
    for n in (2, 3, 10, 101):
        for seed in range(5):
            p = derangement(n, seed)
            assert sorted(p) == list(range(n)) and np.all(p != np.arange(n))
    assert np.array_equal(derangement(50, 1), derangement(50, 1))
    assert not np.array_equal(derangement(50, 1), derangement(50, 2))
    with pytest.raises(ValueError):
        derangement(1, 0)


def test_ground_truth_and_shuffled_copy_the_right_clips(tmp_path, dataset):
    ds = Dataset(dataset)
    gt_doc = baselines.run_baseline(baselines.get("ground-truth"), ds, tmp_path / "gt", progress=False)
    sh_doc = baselines.run_baseline(baselines.get("shuffled-gt"), ds, tmp_path / "sh", seed=3, progress=False)
    audio = {s.segment_id: load_audio(ds.root / s.audio, sr=SR)[0] for s in ds.segments("test")}
    for sid in audio:
        assert np.array_equal(load_audio(tmp_path / "gt" / f"{sid}.wav", sr=SR)[0], audio[sid])
        src = sh_doc["segments"][sid]["source"]
        assert src != sid
        assert np.array_equal(load_audio(tmp_path / "sh" / f"{sid}.wav", sr=SR)[0], audio[src])
    assert sorted(s["source"] for s in sh_doc["segments"].values()) == sorted(audio)
    assert gt_doc["synth"] is None and sh_doc["seed"] == 3


def test_silence_and_seeded_white_noise(tmp_path, dataset):
    baselines.run_baseline(baselines.get("silence"), dataset, tmp_path / "s", progress=False)
    baselines.run_baseline(baselines.get("white-noise"), dataset, tmp_path / "n1", seed=7, progress=False)
    baselines.run_baseline(baselines.get("white-noise"), dataset, tmp_path / "n2", seed=7, progress=False)
    baselines.run_baseline(baselines.get("white-noise"), dataset, tmp_path / "n3", seed=8, progress=False)
    ids = [s.segment_id for s in Dataset(dataset).segments("test")]
    noise = {}
    for sid in ids:
        s, _ = sf.read(tmp_path / "s" / f"{sid}.wav")
        assert len(s) == 2 * SR and np.all(s == 0)
        n1 = (tmp_path / "n1" / f"{sid}.wav").read_bytes()
        assert n1 == (tmp_path / "n2" / f"{sid}.wav").read_bytes()
        assert n1 != (tmp_path / "n3" / f"{sid}.wav").read_bytes()
        noise[sid], _ = sf.read(tmp_path / "n1" / f"{sid}.wav")
        assert noise[sid].std() == pytest.approx(0.1, rel=0.03)
    assert not np.array_equal(noise[ids[0]], noise[ids[1]])
    prov = json.loads((tmp_path / "n1" / "provenance.json").read_text())
    assert prov["baseline"] == "white-noise" and prov["seed"] == 7 and set(prov["segments"]) == set(ids)
