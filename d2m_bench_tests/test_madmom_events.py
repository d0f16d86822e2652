"""The madmom detectors (extra ``madmom``): the wrapper against madmom's own processors on the
same audio, and their place in protocols (the improved variant only)."""
import numpy as np
import pytest
import soundfile as sf

from d2m_bench.errors import UserError
from d2m_bench.protocol import load_protocol
from d2m_bench.synth.synthetic import click_track

mm_events = pytest.importorskip("d2m_bench.features.madmom_events")
try:
    mm_events.madmom()
except ImportError:
    pytest.skip("madmom extra not installed (pip install 'd2m-bench[madmom]')", allow_module_level=True)

SR = 44100


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    """3 s of clicks every 0.5 s over a tone, at the networks' rate: madmom reads the file itself."""
    path = tmp_path_factory.mktemp("madmom") / "clicks.wav"
    y = click_track(np.arange(0.25, 3.0, 0.5), sr=SR, duration=3.0, tone=220.0, noise=0.002)
    sf.write(str(path), y, SR, subtype="PCM_16")
    return path


def test_onsets_equal_the_library_processors(wav):
    from madmom.features.onsets import OnsetPeakPickingProcessor, RNNOnsetProcessor

    from d2m_bench.io.audio import read_audio

    reference_act = RNNOnsetProcessor()(str(wav))  # madmom's own reader (int16) and its pipeline
    reference = OnsetPeakPickingProcessor(threshold=0.35, smooth=0.07, pre_max=0.01, post_max=0.01, fps=100)(
        reference_act)
    y, _, _ = read_audio(wav, SR)
    ours_act = mm_events.activations(y, SR, "madmom-rnn-onset")
    assert ours_act.shape == reference_act.shape
    assert np.allclose(ours_act, reference_act, atol=1e-4)  # float vs int16 input: madmom scales the window
    ours = mm_events.event_times(y, SR, "madmom-rnn-onset")
    assert np.array_equal(ours, reference)
    assert np.allclose(ours, np.arange(0.25, 3.0, 0.5), atol=0.02)  # and they are the clicks


def test_beats_equal_the_library_processors(wav):
    from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor

    from d2m_bench.io.audio import read_audio

    reference = DBNBeatTrackingProcessor(min_bpm=55.0, max_bpm=215.0, transition_lambda=100, observation_lambda=16,
                                         correct=True, fps=100)(RNNBeatProcessor()(str(wav)))
    y, _, _ = read_audio(wav, SR)
    assert np.array_equal(mm_events.event_times(y, SR, "madmom-dbn-beat"), reference)
    assert len(reference) >= 4 and np.allclose(np.diff(reference), 0.5, atol=0.02)


def test_detector_belongs_to_the_improved_variant_only():
    base = load_protocol("tolerance")
    assert "detector" not in base.section("beats")  # absent: librosa, and the shipped hash is unchanged
    p = load_protocol("tolerance-madmom-onset").validate_eval()
    assert p.hash != base.hash and p.get("beats.madmom.threshold") == 0.35
    with pytest.raises(UserError, match="faithful variant 'd2m' keeps librosa"):
        load_protocol("d2m-aistpp-2s").with_overrides({"beats.detector": "madmom-rnn-onset"}).validate_eval()
    with pytest.raises(UserError, match="beats.madmom"):
        p.with_overrides({"beats.madmom.bogus": 1}).validate_eval()


def test_eval_with_the_trained_onset_detector(tmp_path):
    import d2m_bench

    for d, times in (("gt", [0.3, 1.3]), ("pred", [0.32, 1.0])):
        (tmp_path / d).mkdir()
        sf.write(str(tmp_path / d / "a.wav"), click_track(times, tone=220.0), 22050)
    res = d2m_bench.evaluate(tmp_path / "pred", tmp_path / "gt", protocol="tolerance-madmom-onset", workers=1)
    # one of two onsets within 70 ms: precision = recall = 1/2
    assert res.aggregate["madmom_rnn_onset_precision"]["value"] == pytest.approx(0.5)
    assert res.aggregate["madmom_rnn_onset_recall"]["value"] == pytest.approx(0.5)
