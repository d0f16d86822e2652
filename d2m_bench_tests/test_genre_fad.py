"""Frechet distance: zero for identical sets, closed forms on Gaussians, never negative or complex."""
import numpy as np
import pytest
from scipy import linalg

from d2m_bench.metrics.fad import frechet_audio_distance, frechet_distance, gaussian_stats, sqrtm_psd


def _rotation(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def test_identical_sets_give_zero():
    x = np.random.default_rng(0).normal(size=(300, 128))
    assert frechet_audio_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    # Fewer samples than dimensions: singular covariance, still 0 and not negative.
    y = np.random.default_rng(1).normal(size=(20, 128)) * 3
    v = frechet_audio_distance(y, y)
    assert 0.0 <= v < 1e-9 and isinstance(v, float)


def test_one_dimensional_closed_form():
    # FD(N(m1, s1^2), N(m2, s2^2)) = (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_commuting_covariances_closed_form():
    # S1 = R diag(a) R^T, S2 = R diag(b) R^T commute: FD = |dmu|^2 + sum (sqrt a - sqrt b)^2.
    d = 16
    R = _rotation(d, 3)
    a = np.linspace(0.5, 4.0, d)
    b = np.linspace(3.0, 0.1, d)
    mu1, mu2 = np.zeros(d), np.arange(d) / 10.0
    want = mu2 @ mu2 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, R @ np.diag(a) @ R.T, mu2, R @ np.diag(b) @ R.T)
    assert got == pytest.approx(want, rel=1e-10)


def test_general_case_matches_scipy_sqrtm():
    rng = np.random.default_rng(7)
    A, B = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
    S1, S2 = A @ A.T + 0.1 * np.eye(8), B @ B.T
    m1, m2 = rng.normal(size=8), rng.normal(size=8)
    ref = (m1 - m2) @ (m1 - m2) + np.trace(S1) + np.trace(S2) - 2 * np.trace(linalg.sqrtm(S1 @ S2)).real
    assert frechet_distance(m1, S1, m2, S2) == pytest.approx(ref, rel=1e-9)
    # Symmetric in its arguments.
    assert frechet_distance(m2, S2, m1, S1) == pytest.approx(ref, rel=1e-9)


def test_samples_approach_population_value():
    # N(0, I) vs N(mu, 4 I) in 4-D: FD = |mu|^2 + 4 (2 - 1)^2 = 1 + 4 = 5.
    rng = np.random.default_rng(11)
    x = rng.normal(size=(200_000, 4))
    y = np.array([1.0, 0, 0, 0]) + 2.0 * rng.normal(size=(200_000, 4))
    assert frechet_audio_distance(x, y) == pytest.approx(5.0, rel=0.01)


def test_sqrtm_psd_and_stats():
    S = np.array([[4.0, 0.0], [0.0, 9.0]])
    np.testing.assert_allclose(sqrtm_psd(S), [[2.0, 0.0], [0.0, 3.0]])
    r = sqrtm_psd(np.array([[1.0, 1.0], [1.0, 1.0]]))  # rank 1: eigenvalues 2 and 0
    np.testing.assert_allclose(r @ r, [[1.0, 1.0], [1.0, 1.0]], atol=1e-12)
    mu, cov = gaussian_stats([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_allclose(mu, [1.0, 2.0])
    np.testing.assert_allclose(cov, [[2.0, 2.0], [2.0, 2.0]])  # n - 1 denominator
    with pytest.raises(ValueError):
        gaussian_stats([[1.0, 2.0]])
