"""Paper-era librosa (issue 12, item 5): D2M-GAN pinned librosa 0.7.2, whose STFT pads by
reflection and whose load resamples with resampy's kaiser_best. Both are protocol parameters
(beats.onset.pad_mode, audio.resample) and d2m-aistpp-2s-librosa07 sets them."""
import librosa
import numpy as np
import pytest
import soundfile as sf

from d2m_bench.io.audio import read_audio
from d2m_bench.evaluation import evaluate
from d2m_bench.metrics.beats import onset_envelope, onset_times
from d2m_bench.protocol import load_protocol
from d2m_bench.synth.synthetic import click_track, random_onsets
from d2m_bench_tests.helpers import d2m_script, d2m_script_librosa07

SR = 22050
ONLY_BEATS = {"genre.enabled": False, "alignment.enabled": False}


def noise(seed, sr=SR, seconds=2.0):
    return np.random.default_rng(seed).normal(0, 0.3, int(sr * seconds)).astype(np.float32)


def test_reflect_padding_equals_librosa():
    rng = np.random.default_rng(0)
    signals = [noise(0), click_track(random_onsets(rng, 2.0), noise=0.02, tone=220.0)]
    for y in signals:
        for pad_mode in ("constant", "reflect"):
            env = librosa.onset.onset_strength(y=y, sr=SR, pad_mode=pad_mode)
            assert np.array_equal(onset_envelope(y, sr=SR, pad_mode=pad_mode), env)
            ref = librosa.onset.onset_detect(onset_envelope=env, sr=SR, units="time", wait=1, delta=0.2, pre_avg=1,
                                             post_avg=1, post_max=1)
            assert np.array_equal(onset_times(y, sr=SR, pad_mode=pad_mode), ref)
    # the padding matters: on noise the zero-padded start is the one dominant peak, which the
    # envelope normalisation turns into the only onset; reflected, a second one passes delta
    assert len(onset_times(signals[0], sr=SR)) == 1
    assert len(onset_times(signals[0], sr=SR, pad_mode="reflect")) == 2


@pytest.mark.parametrize("sr", (44100, 48000))
def test_kaiser_best_resampling_equals_librosa_load(tmp_path, sr):
    pytest.importorskip("resampy", reason="kaiser_best resampling needs the resampy package (extra paper-era)")
    rng = np.random.default_rng(sr)
    y = np.stack([click_track(random_onsets(rng, 2.0), sr=sr, noise=0.01) for _ in range(2)], axis=1)
    sf.write(tmp_path / "s.wav", y, sr, subtype="FLOAT")
    ours, _, _ = read_audio(tmp_path / "s.wav", SR, res_type="kaiser_best")
    ref, _ = librosa.load(tmp_path / "s.wav", sr=SR, res_type="kaiser_best")
    assert np.array_equal(ours, ref)


def test_librosa07_protocol_equals_the_script_under_librosa07(tmp_path):
    pytest.importorskip("resampy", reason="kaiser_best resampling needs the resampy package (extra paper-era)")
    rng = np.random.default_rng(7)
    (tmp_path / "gt").mkdir(), (tmp_path / "pred").mkdir()
    for i in range(6):
        sr = (SR, 44100, 48000)[i % 3]
        sf.write(tmp_path / "gt" / f"c{i}.wav", click_track(random_onsets(rng, 2.0, rate=1.0), sr=sr, noise=0.01), sr)
        pred = noise(i, sr) if i % 2 else click_track(random_onsets(rng, 2.0, rate=1.0), sr=sr, noise=0.05, tone=330.0)
        sf.write(tmp_path / "pred" / f"c{i}.wav", pred, sr)
    paper = d2m_script_librosa07(tmp_path / "gt", tmp_path / "pred")
    res = evaluate(tmp_path / "pred", tmp_path / "gt", protocol="d2m-aistpp-2s-librosa07", workers=1,
                   overrides=ONLY_BEATS)
    assert [(r["beats_coverage"], r["beats_hit"]) for r in res.per_clip] == paper
    today = d2m_script(tmp_path / "gt", tmp_path / "pred")
    res = evaluate(tmp_path / "pred", tmp_path / "gt", protocol="d2m-aistpp-2s", workers=1, overrides=ONLY_BEATS)
    assert [(r["beats_coverage"], r["beats_hit"]) for r in res.per_clip] == today
    assert paper != today  # the noise predictions: one bin today, two under librosa 0.7.2


def test_paper_era_protocol_differs_only_in_the_two_parameters():
    paper, today = load_protocol("d2m-aistpp-2s-librosa07"), load_protocol("d2m-aistpp-2s")
    assert paper.get("audio.resample") == "kaiser_best" and paper.get("beats.onset.pad_mode") == "reflect"
    params = {**paper.params, "audio": {**paper.params["audio"], "resample": "soxr_hq"},
              "beats": {**paper.params["beats"], "onset": {k: v for k, v in paper.params["beats"]["onset"].items()
                                                          if k != "pad_mode"}}}
    assert params == today.params and paper.hash != today.hash


def test_pad_mode_and_resampler_are_validated(tmp_path):
    from d2m_bench.errors import UserError

    with pytest.raises(UserError, match="pad_mode"):
        load_protocol("d2m-aistpp-2s").with_overrides({"beats.onset.pad_mode": "edge"}).validate_eval()
    load_protocol("d2m-aistpp-2s").with_overrides({"beats.onset.pad_mode": "reflect"}).validate_eval()
