"""Pinned FluidSynth rendering: determinism, mono, length, note timing, CMT's 120/tempo stretch."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from d2m_bench.dataset import Dataset
from d2m_bench.render import DEFAULT_SOUNDFONT, fit_length, render_midi, stretch_midi, synth_info, write_notes_midi
from d2m_bench.synthetic import make_tiny_dataset

needs_synth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path(DEFAULT_SOUNDFONT).is_file(),
    reason="fluidsynth / fluid-soundfont-gm not installed: apt-get install fluidsynth fluid-soundfont-gm (make sysdeps)")
SR = 22050


def first_onset(y, sr, threshold=1e-3):
    """Seconds of the first sample whose magnitude exceeds ``threshold``."""
    return int(np.argmax(np.abs(y) > threshold)) / sr


def test_fit_length_trims_and_pads():
    y = np.arange(5, dtype=np.float32)
    assert np.array_equal(fit_length(y, 3), [0, 1, 2])
    assert np.array_equal(fit_length(y, 7), [0, 1, 2, 3, 4, 0, 0])


def test_stretch_midi_scales_note_times(tmp_path):
    import pretty_midi

    write_notes_midi(tmp_path / "a.mid", [(60, 0.5, 1.0, 100), (64, 1.5, 2.0, 90)], qpm=120)
    end = stretch_midi(tmp_path / "a.mid", tmp_path / "b.mid", 120 / 100)
    notes = pretty_midi.PrettyMIDI(str(tmp_path / "b.mid")).instruments[0].notes
    assert [round(n.start, 4) for n in notes] == [0.6, 1.8]
    assert end == pytest.approx(2.4)


@needs_synth
def test_render_is_deterministic_mono_and_exact_length(tmp_path):
    midi = tmp_path / "n.mid"
    write_notes_midi(midi, [(60, 0.5, 1.0, 100), (67, 1.0, 1.6, 100)], qpm=75)
    a = render_midi(midi, sr=SR, length=44100)
    b = render_midi(midi, sr=SR, length=44100)
    assert a.shape == (44100,) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert np.abs(a).max() > 0.005
    assert 0.5 <= first_onset(a, SR) < 0.52  # nothing sounds before the note
    short = render_midi(midi, sr=16000, length=8000)  # other rate, trimmed before the note
    assert short.shape == (8000,) and np.abs(short).max() == 0.0
    info = synth_info()
    assert len(info["soundfont_sha256"]) == 64 and info["reverb"] is False and info["chorus"] is False


@needs_synth
@pytest.mark.parametrize("tempo", [100.0, 150.0])
def test_cmt_adapter_applies_the_tempo_stretch(tmp_path, tempo):
    import baselines

    data = make_tiny_dataset(tmp_path / "d", n_train=1, n_test=2)
    ids = [s.segment_id for s in Dataset(data).segments("test")]
    up = tmp_path / "cmt"
    for sid in ids:
        # CMT writes 120 qpm: beat 1 (the second quarter) starts at 0.5 s
        write_notes_midi(up / f"{sid}.mid", [(60, 0.5, 0.9, 100)], qpm=120)
        (up / f"{sid}.json").write_text(json.dumps({"tempo": tempo}))
    doc = baselines.run_baseline(baselines.get("cmt"), data, tmp_path / "out", upstream=up, progress=False)
    expected = 0.5 * 120 / tempo
    for sid in ids:
        y, sr = sf.read(tmp_path / "out" / f"{sid}.wav")
        assert sr == SR and y.ndim == 1 and len(y) == 2 * SR
        assert expected <= first_onset(y, sr) < expected + 0.02
        assert doc["segments"][sid]["stretch"] == pytest.approx(120 / tempo)
        assert doc["segments"][sid]["tempo"] == tempo
    assert doc["synth"]["soundfont_sha256"] and doc["upstream"].startswith("wzk1015/video-bgm-generation")


@needs_synth
def test_dance2music_run_is_reproducible_and_matches_its_midi(tmp_path):
    import baselines
    import pretty_midi

    data = make_tiny_dataset(tmp_path / "d", kind="tiktok", n_train=1, n_test=2)
    a = baselines.run_baseline(baselines.get("dance2music"), data, tmp_path / "a", progress=False)
    baselines.run_baseline(baselines.get("dance2music"), data, tmp_path / "b", progress=False)
    assert a["run"]["feature_dims"] == 36  # BODY_25 without MidHip and the feet
    for sid, seg in a["segments"].items():
        wa, wb = (tmp_path / d / f"{sid}.wav" for d in "ab")
        assert wa.read_bytes() == wb.read_bytes()
        assert sf.info(str(wa)).frames == 2 * SR and sf.info(str(wa)).channels == 1
        notes = pretty_midi.PrettyMIDI(str(tmp_path / "a" / seg["midi"])).instruments[0].notes
        pitches = seg["pitches"]
        merged = [p for i, p in enumerate(pitches) if i == 0 or p != pitches[i - 1]]
        assert [n.pitch for n in notes] == merged
        assert notes[0].start == pytest.approx(0.2, abs=1e-3) and all(n.velocity == 100 for n in notes)
        assert notes[-1].end == pytest.approx(0.2 + 0.2 * len(pitches), abs=1e-3)
