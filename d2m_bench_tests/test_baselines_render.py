"""Pinned FluidSynth rendering: determinism, mono, length, note timing, CMT's 120/tempo stretch."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from d2m_bench.data.dataset import Dataset
from d2m_bench.synth.render import DEFAULT_SOUNDFONT, fit_length, render_midi, stretch_midi, synth_info, write_notes_midi
from d2m_bench.synth.synthetic import make_tiny_dataset

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
    from d2m_bench import baselines

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
    from d2m_bench import baselines
    import pretty_midi

    data = make_tiny_dataset(tmp_path / "d", kind="tiktok", n_train=1, n_test=2)
    a = baselines.run_baseline(baselines.get("dance2music"), data, tmp_path / "a", progress=False)
    baselines.run_baseline(baselines.get("dance2music"), data, tmp_path / "b", progress=False)
    assert a["run"]["feature_dims"] == 36  # BODY_25 without MidHip and the feet
    assert any("BODY_25 without MidHip" in d for d in a["run"]["deviations"])
    assert any(d.startswith("equal rewards ranked") for d in a["run"]["deviations"])
    ds = Dataset(data)
    kp_fps = a["run"]["keypoints_fps"]
    for seg in ds.segments("test"):  # frame counts in named units: keypoint rate vs the 30 fps search
        n_kp = len(np.load(ds.root / seg.keypoints))
        info = a["segments"][seg.segment_id]
        assert info["keypoint_frames"] == n_kp
        assert info["frames_30fps"] == int(np.floor(n_kp * 30.0 / kp_fps + 1e-9))
        assert info["notes"] == info["frames_30fps"] // 6
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


def test_soundfont_is_checked_against_the_pin(tmp_path, monkeypatch, capsys):
    import hashlib

    from d2m_bench.errors import UserError
    from d2m_bench.synth.render import PINNED_SHA256

    other = tmp_path / "other.sf2"  # a different file: the head of the pinned one, or any bytes
    src = Path(DEFAULT_SOUNDFONT)
    other.write_bytes(src.open("rb").read(4096) if src.is_file() else b"RIFF not a soundfont")
    monkeypatch.setenv("D2M_SOUNDFONT", str(other))
    info = synth_info()
    assert info["soundfont"] == str(other.resolve())
    assert info["soundfont_sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()
    assert info["soundfont_pinned"] is False and info["pinned_sha256"] == PINNED_SHA256
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("d2m-bench: warning: soundfont") and "not the pinned" in err[0]
    if shutil.which("fluidsynth"):
        # fluidsynth exits 0 and falls back to its default soundfont when this one does not load
        write_notes_midi(tmp_path / "n.mid", [(60, 0.1, 0.5, 100)])
        with pytest.raises(UserError, match="could not load this soundfont"):
            render_midi(tmp_path / "n.mid", sr=SR)


@needs_synth
def test_pinned_soundfont_is_recognised_without_warning(capsys):
    info = synth_info(DEFAULT_SOUNDFONT)
    assert info["soundfont_pinned"] is True
    assert capsys.readouterr().err == ""


def upstream_midis(up, ids, notes, tempo=None, **meta):
    for sid in ids:
        write_notes_midi(up / f"{sid}.mid", notes, qpm=120)
        if tempo is not None:
            (up / f"{sid}.json").write_text(json.dumps({"tempo": tempo, **meta}))


@needs_synth
def test_foley_music_renders_its_midi_with_the_note_at_its_time(tmp_path):
    from d2m_bench import baselines
    import mido

    data = make_tiny_dataset(tmp_path / "d", n_train=1, n_test=2)
    ids = [s.segment_id for s in Dataset(data).segments("test")]
    up = tmp_path / "foley"
    up.mkdir()
    for sid in ids:  # written with mido, as a transformer's event decoder would: 480 ticks/beat, 120 bpm
        mid = mido.MidiFile(ticks_per_beat=480)
        track = mido.MidiTrack()
        mid.tracks.append(track)
        track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
        track.append(mido.Message("program_change", program=0, time=0))
        track.append(mido.Message("note_on", note=67, velocity=90, time=720))  # 1.5 beats = 0.75 s
        track.append(mido.Message("note_off", note=67, velocity=0, time=480))
        mid.save(str(up / f"{sid}.mid"))
    doc = baselines.run_baseline(baselines.get("foley-music"), data, tmp_path / "out", upstream=up, progress=False)
    for sid in ids:
        y, sr = sf.read(tmp_path / "out" / f"{sid}.wav")
        assert sr == SR and len(y) == 2 * SR
        assert 0.75 <= first_onset(y, sr) < 0.77
        assert np.abs(y[int(0.76 * SR):int(1.2 * SR)]).max() > 0.01  # the note sounds
        assert (tmp_path / "out" / doc["segments"][sid]["midi"]).read_bytes() == (up / f"{sid}.mid").read_bytes()
    assert doc["synth"]["soundfont_pinned"] is True and doc["upstream"].startswith("chuangg/Foley-Music")


@needs_synth
def test_cmt_offset_skips_into_the_stretched_music(tmp_path):
    from d2m_bench import baselines

    data = make_tiny_dataset(tmp_path / "d", n_train=1, n_test=2)
    ids = [s.segment_id for s in Dataset(data).segments("test")]
    # a note at 1.0 s (beat 2 at 120 qpm); tempo 100 stretches it to 1.2 s; the segment starts
    # 0.5 s into the music, so it sounds at 0.7 s of the clip
    upstream_midis(tmp_path / "cmt", ids, [(60, 1.0, 1.4, 100)], tempo=100.0, offset_s=0.5)
    doc = baselines.run_baseline(baselines.get("cmt"), data, tmp_path / "out", upstream=tmp_path / "cmt",
                                 progress=False)
    for sid in ids:
        y, sr = sf.read(tmp_path / "out" / f"{sid}.wav")
        assert len(y) == 2 * SR
        assert 0.7 <= first_onset(y, sr) < 0.72
        assert doc["segments"][sid]["offset_s"] == 0.5


@needs_synth
@pytest.mark.parametrize("bad", ["tempo", "midi"])
def test_adapters_validate_every_input_before_writing(tmp_path, bad):
    from d2m_bench import baselines
    from d2m_bench.errors import UserError

    data = make_tiny_dataset(tmp_path / "d", n_train=1, n_test=3)
    ids = [s.segment_id for s in Dataset(data).segments("test")]
    up = tmp_path / "cmt"
    upstream_midis(up, ids, [(60, 0.5, 0.9, 100)], tempo=120.0)
    out = tmp_path / "out"
    baselines.run_baseline(baselines.get("cmt"), data, out, upstream=up, progress=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    last = ids[-1]  # the last segment: a check made only while rendering would come after the others
    if bad == "tempo":
        (up / f"{last}.json").write_text(json.dumps({"tempo": "fast"}))
        match = f"{last}.json: CMT metadata needs a positive number 'tempo'"
    else:
        (up / f"{last}.mid").write_bytes(b"MThd garbage")
        match = f"{last}.mid: unreadable MIDI"
    with pytest.raises(UserError, match=match):
        baselines.run_baseline(baselines.get("cmt"), data, out, upstream=up, progress=False, force=True)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing deleted or rewritten
    if bad == "midi":
        with pytest.raises(UserError, match=match):
            baselines.run_baseline(baselines.get("foley-music"), data, tmp_path / "f", upstream=up, progress=False)
        assert not (tmp_path / "f").exists()


@needs_synth
def test_dance2music_frame_counts_name_their_rate(tmp_path):
    import dataclasses

    from d2m_bench import baselines
    from d2m_bench.data.dataset import write_manifest

    data = make_tiny_dataset(tmp_path / "d", n_train=1, n_test=2)
    ds = Dataset(data)
    a = baselines.run_baseline(baselines.get("dance2music"), ds, tmp_path / "a", progress=False)
    assert a["run"]["feature_dims"] == 34 and any("COCO-17" in d for d in a["run"]["deviations"])
    # the same dance stored at 60 fps (every frame twice): 2x the keypoint frames, the same
    # 30-fps frames and the same melody
    segs = ds.segments()
    for seg in segs:
        np.save(ds.root / seg.keypoints, np.repeat(np.load(ds.root / seg.keypoints), 2, axis=0))
    write_manifest(ds.root, segs, dataclasses.replace(ds.info, keypoints_fps=60.0))
    b = baselines.run_baseline(baselines.get("dance2music"), data, tmp_path / "b", progress=False)
    assert b["run"]["keypoints_fps"] == 60.0
    for sid, info in a["segments"].items():
        other = b["segments"][sid]
        assert other["keypoint_frames"] == 2 * info["keypoint_frames"]
        assert other["frames_30fps"] == info["frames_30fps"] == info["keypoint_frames"]
        assert other["pitches"] == info["pitches"]
