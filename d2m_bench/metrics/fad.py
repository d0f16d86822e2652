"""Frechet Audio Distance (Kilgour et al., Interspeech 2019).

Each embedding set is summarised by a Gaussian N(mu, S) (sample mean, unbiased covariance);
the Frechet (2-Wasserstein) distance between two Gaussians is

    FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)

(Dowson & Landau 1982). The trace term uses the symmetric PSD product S1^1/2 S2 S1^1/2,
whose eigenvalues are real; both square roots come from symmetric eigendecompositions
with eigenvalues clipped at 0, all in float64, so the result is never complex. Rounding can
still leave a value of order 1e-12 below 0 for identical sets; it is reported as 0.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def gaussian_stats(x: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), covariance (d, d)) of rows of ``x`` in float64 (covariance with n - 1)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need at least 2 embeddings as rows of a 2-D array, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def sqrtm_psd(a: ArrayLike) -> np.ndarray:
    """Principal square root of a symmetric positive semi-definite matrix (eigenvalues < 0,
    which only rounding produces, are set to 0)."""
    a = np.asarray(a, dtype=np.float64)
    w, v = np.linalg.eigh((a + a.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: ArrayLike, cov1: ArrayLike, mu2: ArrayLike, cov2: ArrayLike) -> float:
    """Frechet distance between N(mu1, cov1) and N(mu2, cov2) (formula in the module doc)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    root1 = sqrtm_psd(cov1)
    middle = root1 @ cov2 @ root1
    w = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    trace_root = float(np.sqrt(np.clip(w, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_root)
    return max(value, 0.0)


def frechet_audio_distance(x: ArrayLike, y: ArrayLike) -> float:
    """FAD between two embedding sets ``x`` (n, d) and ``y`` (m, d), rows = embeddings, n, m >= 2.

    Example: two sets drawn from the same distribution give a value near 0; shifting every
    row of one set by a vector ``s`` adds ``||s||^2``.
    """
    return frechet_distance(*gaussian_stats(x), *gaussian_stats(y))
