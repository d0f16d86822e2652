"""Compressed audio is decoded as librosa.load decodes it (issue 12, item 1).

Real AAC (mp4, m4a) and mp3 encodes are made here with PyAV's encoders; the references are
the ffmpeg binary of imageio-ffmpeg (what audioread runs for librosa.load) and the literal
ports of the published beat scripts in helpers.py.
"""
import numpy as np
import pytest
import soundfile as sf

from d2m_bench.io.audio import read_audio
from d2m_bench.evaluation import evaluate
from d2m_bench.features.events import detector_config, file_events
from d2m_bench.protocol import load_protocol
from d2m_bench.synth.synthetic import click_track, random_onsets
from d2m_bench_tests.helpers import (d2m_script, encode, ffmpeg_exe, ffmpeg_on_path, ffmpeg_s16, loris_script)

pytestmark = pytest.mark.skipif(ffmpeg_exe() is None, reason="needs the imageio-ffmpeg package (dev extra) "
                                                              "for a reference ffmpeg binary")
RATES = (22050, 44100, 48000)


def music(rng, sr, channels, seconds=2.0, n=None):
    """Clicks over a tone and noise: onsets that AAC keeps, a spectrum it has to code."""
    chans = []
    for c in range(channels):
        y = click_track(random_onsets(rng, seconds, rate=2.0, min_gap=0.2), sr=sr, duration=seconds,
                        noise=0.01, tone=220.0 * (c + 1), seed=int(rng.integers(1 << 30)))
        chans.append(0.5 * y)
    y = np.stack(chans)
    return y[:, :n] if n else y


@pytest.fixture
def ffmpeg(tmp_path, monkeypatch):
    return ffmpeg_on_path(tmp_path / "bin", monkeypatch)


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("channels", (1, 2))
@pytest.mark.parametrize("ext", ("mp4", "m4a", "mp3"))
def test_samples_equal_librosa_load_and_ffmpeg(tmp_path, ffmpeg, sr, channels, ext):
    import librosa

    rng = np.random.default_rng(sr + channels)
    n = int(2 * sr) - 68 * (sr // 22050)  # not a multiple of the codec frame (1024 / 1152)
    path = encode(tmp_path / f"clip.{ext}", music(rng, sr, channels, n=n), sr,
                  "libmp3lame" if ext == "mp3" else "aac")
    # ffmpeg drops the encoder delay and the padding of the last frame: the input length (up to
    # the few samples the muxer's duration rounding loses at 48 kHz), never whole codec frames more
    ref = ffmpeg_s16(path)
    native = len(ref) // channels
    assert n - 16 <= native <= n
    for target in (None, 22050):
        y_ref, sr_ref = librosa.load(path, sr=target)
        y, sr_out, info = read_audio(path, target)
        assert sr_out == sr_ref
        assert len(y) == len(y_ref)
        assert np.array_equal(y, y_ref)  # bit-identical, not merely close
        assert info.native_samples == native and info.native_sr == sr and info.channels == channels
    if ext != "mp3":  # values: libswresample's s16, divided by 32768 (librosa's buf_to_float)
        y, _, _ = read_audio(path, None, mix=None)
        assert np.array_equal(y.T.reshape(-1), ref.astype(np.float32) / 32768)


def test_mp4_without_edit_list_keeps_what_ffmpeg_keeps(tmp_path, ffmpeg):
    """No edit list: ffmpeg keeps the priming samples and cuts at the sample table's duration."""
    import subprocess

    import librosa

    rng = np.random.default_rng(5)
    sf.write(tmp_path / "src.wav", music(rng, 22050, 1)[0], 22050)
    out = tmp_path / "noedit.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "src.wav"), "-c:a", "aac",
                    "-use_editlist", "0", str(out)], check=True)
    y_ref, _ = librosa.load(out, sr=None)
    y, _, info = read_audio(out, None)
    assert len(ref := ffmpeg_s16(out)) == len(y) == info.native_samples
    assert len(ref) != 44100  # the priming is kept: this file really has no edit list
    assert np.array_equal(y, y_ref)


def _pairs(tmp_path, rng, sr, channels, n_clips, pred_samples):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir(exist_ok=True), pred_dir.mkdir(exist_ok=True)
    for i in range(n_clips):
        sf.write(gt_dir / f"c{i:02d}.wav", music(rng, sr, channels).T, sr)
        encode(pred_dir / f"c{i:02d}.mp4", music(rng, sr, channels, n=pred_samples), sr, "aac")
    return gt_dir, pred_dir


@pytest.mark.parametrize("sr,channels", [(22050, 1), (44100, 2), (48000, 1)])
def test_aac_predictions_score_as_the_published_scripts(tmp_path, ffmpeg, sr, channels):
    rng = np.random.default_rng(sr)
    # 44032 samples at 22.05 kHz: what the high-level D2M-GAN model writes, as a demo mp4 holds it
    pred_samples = 44032 * sr // 22050
    gt_dir, pred_dir = _pairs(tmp_path, rng, sr, channels, 8, pred_samples)
    ref = d2m_script(gt_dir, pred_dir)
    res = evaluate(pred_dir, gt_dir, protocol="d2m-aistpp-2s", workers=1)
    assert [(r["beats_coverage"], r["beats_hit"]) for r in res.per_clip] == ref
    assert all(r["length_action"] == "none" for r in res.per_clip)
    for r in res.per_clip:  # the decoded length without codec padding, as ffmpeg gives it
        assert r["pred_native_samples"] == len(ffmpeg_s16(r["pred"])) // channels
        assert abs(r["pred_native_samples"] - pred_samples) <= 16
    assert {r["gt_native_samples"] for r in res.per_clip} == {2 * sr}

    pairs = [(gt_dir / f"c{i:02d}.wav", pred_dir / f"c{i:02d}.mp4") for i in range(8)]
    ref = loris_script(pairs)
    res = evaluate(pred_dir, gt_dir, protocol="loris", workers=1)
    assert [(r["loris_coverage"], r["loris_hit"]) for r in res.per_clip] == ref


def test_onset_times_equal_on_decoded_aac(tmp_path, ffmpeg):
    import librosa

    rng = np.random.default_rng(11)
    audio = load_protocol("d2m-aistpp-2s").section("audio")
    detector = detector_config(load_protocol("d2m-aistpp-2s").section("beats"))
    for sr in RATES:
        for channels in (1, 2):
            path = encode(tmp_path / f"o{sr}{channels}.m4a", music(rng, sr, channels), sr, "aac")
            n, loaded, times, action, _, info = file_events(path, audio=audio, detector=detector)
            y, _ = librosa.load(path)
            ref = librosa.onset.onset_detect(y=y, sr=22050, units="time", wait=1, delta=0.2, pre_avg=1,
                                             post_avg=1, post_max=1)
            assert n == loaded == len(y) == 44100 and action == "none"
            assert np.array_equal(times, ref)
