"""Kernel Inception Distance (Binkowski et al., ICLR 2018), as audioldm_eval computes it.

KID is the squared maximum mean discrepancy between two embedding sets under the polynomial
kernel k(x, y) = (gamma <x, y> + coef0) ** degree (gamma = 1 / dim by default, coef0 = 1,
degree = 3). For two subsets X, Y of m rows each, the unbiased estimate is

    MMD^2 = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
            - 2 sum_{i, j} k(x_i, y_j) / m^2

(the opt-mmd form that audioldm_eval ``metrics/kid.py`` follows). ``subsets`` pairs of subsets
are drawn without replacement from one ``numpy.random.RandomState(seed)``: first the generated
rows, then the reference rows, per subset; KID is the mean of the subset values and its spread
their population standard deviation (numpy ``std``). ``subset_size`` is cut to the smaller set's
size when either set is smaller (audioldm_eval prints a warning and does the same). audioldm_eval's
settings: 100 subsets of 1000, degree 3, gamma None, coef0 1, seed 2020, PANNs "2048" features.

The value can be negative (an unbiased estimate of a quantity that is 0 for equal distributions).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

DEFAULTS = {"subsets": 100, "subset_size": 1000, "degree": 3, "gamma": None, "coef0": 1.0, "seed": 2020}


def polynomial_kernel(x: np.ndarray, y: np.ndarray, *, degree=3, gamma=None, coef0=1.0) -> np.ndarray:
    """(len(x), len(y)) kernel matrix (gamma <x_i, y_j> + coef0) ** degree; gamma None: 1 / dim."""
    g = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * g + coef0) ** degree


def polynomial_mmd(x: ArrayLike, y: ArrayLike, *, degree=3, gamma=None, coef0=1.0) -> float:
    """Unbiased MMD^2 between equal-sized row sets ``x`` and ``y`` (module doc)."""
    x, y = np.asarray(x), np.asarray(y)
    m = len(x)
    if x.ndim != 2 or x.shape != y.shape or m < 2:
        raise ValueError(f"need two (m, d) sets of equal shape with m >= 2, got {x.shape} and {y.shape}")
    kxx = polynomial_kernel(x, x, degree=degree, gamma=gamma, coef0=coef0)
    kyy = polynomial_kernel(y, y, degree=degree, gamma=gamma, coef0=coef0)
    kxy = polynomial_kernel(x, y, degree=degree, gamma=gamma, coef0=coef0)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / (m * m))


def kernel_inception_distance(gen: ArrayLike, ref: ArrayLike, *, subsets=100, subset_size=1000, degree=3,
                              gamma=None, coef0=1.0, seed=2020) -> dict:
    """KID between generated rows ``gen`` (n, d) and reference rows ``ref`` (m, d).

    Returns ``{"value": mean, "std": std over subsets, "subset_size": size used, "subsets"}``.
    The arrays are used in their own dtype (audioldm_eval passes float32 features).

    Example: two sets drawn from one distribution give a value near 0 (either sign).
    """
    gen, ref = np.asarray(gen), np.asarray(ref)
    if gen.ndim != 2 or ref.ndim != 2 or gen.shape[1] != ref.shape[1]:
        raise ValueError(f"need (n, d) and (m, d) embeddings of one d, got {gen.shape} and {ref.shape}")
    if not isinstance(subsets, int) or subsets < 1:
        raise ValueError(f"subsets must be a positive integer, got {subsets!r}")
    size = min(int(subset_size), len(gen), len(ref))
    if size < 2:
        raise ValueError(f"KID needs at least 2 rows on each side, got {len(gen)} and {len(ref)}")
    rng = np.random.RandomState(seed)
    values = np.zeros(subsets)
    for i in range(subsets):
        x = gen[rng.choice(len(gen), size, replace=False)]
        y = ref[rng.choice(len(ref), size, replace=False)]
        values[i] = polynomial_mmd(x, y, degree=degree, gamma=gamma, coef0=coef0)
    return {"value": float(values.mean()), "std": float(values.std()), "subset_size": size, "subsets": subsets}
