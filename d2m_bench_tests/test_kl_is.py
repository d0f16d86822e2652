"""KL divergence, Inception Score and CLAP score (d2m_bench.metrics.distributions) against
literal ports of audioldm_eval's ``calculate_kl`` / ``calculate_isc`` and stable-audio-metrics'
``passt_kld`` (written here from their definitions, in torch as there), and hand-computed cases."""
import math

import numpy as np
import pytest

from d2m_bench.metrics import distributions as dm

from .helpers import audioldm_eval_isc, audioldm_eval_kl, stable_audio_metrics_kl

torch = pytest.importorskip("torch")


def _logits(seed, n=12, c=527, scale=3.0):
    return (np.random.default_rng(seed).normal(size=(n, c)) * scale).astype(np.float32)


# --- KL ---------------------------------------------------------------------------------------

def test_kl_softmax_and_sigmoid_equal_audioldm_eval():
    gen, ref = _logits(1), _logits(2)
    soft, sig = audioldm_eval_kl(gen, ref)
    assert dm.kl_divergence(gen, ref, convention="softmax", direction="ref_to_gen") == pytest.approx(soft, rel=1e-5)
    assert dm.kl_divergence(gen, ref, convention="sigmoid", direction="ref_to_gen") == pytest.approx(sig, rel=1e-5)


def test_kl_gen_to_ref_equals_stable_audio_metrics():
    gen, ref = _logits(3), _logits(4)
    expected = stable_audio_metrics_kl(gen, ref)
    assert dm.kl_divergence(gen, ref, convention="softmax", direction="gen_to_ref") == pytest.approx(expected, rel=1e-5)
    # the two directions really differ on these inputs: the parameter matters
    assert abs(dm.kl_divergence(gen, ref, direction="ref_to_gen") - expected) > 1e-3


def test_kl_hand_computed_two_classes():
    # softmax([0, 0]) = (1/2, 1/2), softmax([log 3, 0]) = (3/4, 1/4)
    gen, ref = np.array([[math.log(3), 0.0]]), np.array([[0.0, 0.0]])
    expected = 0.5 * math.log(0.5 / (0.75 + 1e-6)) + 0.5 * math.log(0.5 / (0.25 + 1e-6))
    assert dm.kl_divergence(gen, ref) == pytest.approx(expected, abs=1e-12)
    assert dm.kl_divergence(gen, ref, eps=0.0) == pytest.approx(0.5 * math.log(2 / 3) + 0.5 * math.log(2), abs=1e-12)
    per = dm.kl_per_clip(np.vstack([gen, ref]), np.vstack([ref, ref]), eps=0.0)
    assert per[1] == pytest.approx(0.0, abs=1e-15)


def test_kl_rejects_unpaired_shapes_and_unknown_names():
    with pytest.raises(ValueError):
        dm.kl_divergence(_logits(1, n=3), _logits(2, n=4))
    with pytest.raises(ValueError):
        dm.kl_divergence(_logits(1), _logits(2), convention="tanh")
    with pytest.raises(ValueError):
        dm.kl_divergence(_logits(1), _logits(2), direction="both")


# --- IS ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,splits", [(40, 10), (23, 4), (7, 1)])
def test_inception_score_equals_audioldm_eval(n, splits):
    logits = _logits(5, n=n)
    mean, std = dm.inception_score(logits, splits=splits, seed=2020)
    ref_mean, ref_std = audioldm_eval_isc(logits, splits)
    assert mean == pytest.approx(ref_mean, rel=1e-10)
    assert std == pytest.approx(ref_std, rel=1e-8, abs=1e-12)


def test_inception_score_hand_computed():
    # each of 4 clips certain of its own class: p(y) uniform over 4, KL = log 4 per clip -> IS 4
    certain = np.full((4, 4), -1e4) + np.eye(4) * 2e4
    assert dm.inception_score(certain, splits=1)[0] == pytest.approx(4.0, rel=1e-9)
    # identical predictions: no diversity -> IS 1
    same = np.tile(np.array([[2.0, 0.0, -1.0]]), (6, 1))
    assert dm.inception_score(same, splits=2) == pytest.approx((1.0, 0.0), abs=1e-12)


# --- CLAP score -------------------------------------------------------------------------------

def test_clap_score_hand_computed():
    audio = np.array([[1.0, 0.0], [1.0, 1.0]])
    text = np.array([[2.0, 0.0], [0.0, 3.0]])
    assert dm.clap_score(audio, text) == pytest.approx((1.0 + 1 / math.sqrt(2)) / 2)
    assert dm.clap_score(audio, text, scale=100.0) == pytest.approx(50.0 * (1.0 + 1 / math.sqrt(2)))
    with pytest.raises(ValueError):
        dm.clap_score(np.zeros((1, 2)), np.ones((1, 2)))
