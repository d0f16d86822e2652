"""Statistics for listening tests: pure functions, arrays in, numbers out.

Everything here is independent of the survey format so it can be checked against
hand-computed and published values (see d2m_bench_tests/test_mos_stats.py).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BOOT_BYTES = 32 * 2 ** 20  # per (replicates x ratings) array in bootstrap_two_way


def t_interval(values, *, level: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t confidence interval for the mean.

    ``mean -+ t_{(1+level)/2, n-1} * s / sqrt(n)`` with ``s`` the sample standard deviation
    (ddof = 1). Fewer than two values give ``(nan, nan)``.
    """
    from scipy.stats import t as student_t

    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n < 2:
        return (math.nan, math.nan)
    half = student_t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    m = float(x.mean())
    return (m - half, m + half)


def bootstrap_two_way(scores, rater_index, item_index, *, n_boot: int = 2000, level: float = 0.95,
                      seed: int = 0, chunk: int = 256) -> dict:
    """Percentile bootstrap CI of a mean rating, resampling raters and items independently.

    Each replicate draws raters with replacement and, independently, items with replacement;
    a rating (r, i) then enters the replicate mean with weight ``count(r) * count(i)``, the
    number of times the pair appears in the crossed resample (two-way random bootstrap,
    cf. Ribeiro et al., ICASSP 2011 "CrowdMOS", for why both sources of variance matter).
    Replicates in which no drawn rater rated a drawn item are discarded and counted.

    ``rater_index``/``item_index`` are integer codes 0..R-1 / 0..I-1 per rating. Deterministic
    for a given ``seed``. Returns ``{"low", "high", "n_boot", "n_valid", "seed"}``.
    """
    s = np.asarray(scores, dtype=np.float64)
    ri = np.asarray(rater_index, dtype=np.int64)
    ii = np.asarray(item_index, dtype=np.int64)
    if not (len(s) == len(ri) == len(ii)):
        raise ValueError("scores, rater_index and item_index differ in length")
    if len(s) == 0:
        return {"low": math.nan, "high": math.nan, "n_boot": n_boot, "n_valid": 0, "seed": seed}
    n_r, n_i = int(ri.max()) + 1, int(ii.max()) + 1
    # Replicates per step: ``chunk``, fewer when the (replicates x ratings) weight matrices would
    # outgrow BOOT_BYTES (a million ratings took 5.5 GB at 256 per step). The replicates do not
    # depend on it: each is computed on its own, from counts drawn in the same order.
    chunk = max(1, min(int(chunk), BOOT_BYTES // (8 * max(len(s), n_r, n_i))))
    means = []
    for rc, ic in _count_chunks(seed, n_r, n_i, n_boot, chunk):
        w = rc[:, ri] * ic[:, ii]
        tot = w.sum(axis=1)
        ok = tot > 0
        means.append((w[ok] @ s) / tot[ok])
    means = np.concatenate(means)
    if len(means) == 0:
        return {"low": math.nan, "high": math.nan, "n_boot": n_boot, "n_valid": 0, "seed": seed}
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return {"low": float(lo), "high": float(hi), "n_boot": n_boot, "n_valid": int(len(means)), "seed": seed}


def _count_chunks(seed, n_r: int, n_i: int, n_boot: int, chunk: int):
    """The bootstrap's (rater counts, item counts), ``chunk`` replicates at a time, equal to drawing
    all ``n_boot`` rater counts and then all item counts from ``default_rng(seed)`` at once.

    Holding them all would take n_boot x (raters + items) floats; instead a second generator is
    advanced past the rater draws (multinomial rows are drawn one after the other, so drawing
    in pieces consumes the stream exactly as one call does).
    """
    p_r, p_i = np.full(n_r, 1.0 / n_r), np.full(n_i, 1.0 / n_i)
    steps = [min(chunk, n_boot - start) for start in range(0, n_boot, chunk)]
    raters, items = np.random.default_rng(seed), np.random.default_rng(seed)
    for k in steps:
        items.multinomial(n_r, p_r, size=k)
    for k in steps:
        yield (raters.multinomial(n_r, p_r, size=k).astype(np.float64),
               items.multinomial(n_i, p_i, size=k).astype(np.float64))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values, in the input order.

    Sorted ascending p_(1) <= ... <= p_(m): adj_(j) = max_{k<=j} min(1, (m - k + 1) p_(k)).
    NaN p-values are passed through and do not count towards m.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(len(p), np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    running = 0.0
    for rank, idx in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out.tolist()


def _delta2(values: np.ndarray, counts: np.ndarray, level: str) -> np.ndarray:
    c, k = np.meshgrid(values, values, indexing="ij")
    if level == "nominal":
        return (c != k).astype(np.float64)
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        with np.errstate(invalid="ignore", divide="ignore"):
            d = ((c - k) / (c + k)) ** 2
        return np.nan_to_num(d)
    if level == "ordinal":
        # delta_ck = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2, values sorted ascending.
        cum = np.concatenate([[0.0], np.cumsum(counts)])
        i, j = np.meshgrid(np.arange(len(values)), np.arange(len(values)), indexing="ij")
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        between = cum[hi + 1] - cum[lo]
        return (between - (counts[i] + counts[j]) / 2) ** 2
    raise ValueError(f"unknown level of measurement '{level}' (nominal, ordinal, interval, ratio)")


def krippendorff_alpha(units, *, level: str = "interval") -> float:
    """Krippendorff's alpha from the values each unit received.

    ``units``: either a (observers, units) array with NaN for missing values, or a sequence
    of 1-D arrays (the values of each unit; observers need not be identified).
    Only units with at least two values are pairable. With the coincidence matrix
    ``o_ck = sum_u (#c-k pairs in u) / (m_u - 1)``, ``n_c = sum_k o_ck``, ``n = sum_c n_c``:
    ``alpha = 1 - (n - 1) * sum o_ck d2_ck / sum_c sum_k n_c n_k d2_ck``
    (Krippendorff, "Computing Krippendorff's Alpha-Reliability", 2011). Returns NaN when
    there is no pairable unit or no variation at all.
    """
    if isinstance(units, np.ndarray) and units.ndim == 2:
        units = [col[~np.isnan(col)] for col in units.astype(np.float64).T]
    units = [np.asarray(u, dtype=np.float64) for u in units]
    units = [u for u in units if len(u) >= 2]
    if not units:
        return math.nan
    values = np.unique(np.concatenate(units))
    if len(values) < 2:
        return math.nan
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for u in units:
        cnt = np.zeros(len(values))
        for v in u:
            cnt[index[v]] += 1
        # ordered pairs of distinct ratings within the unit: cnt_c cnt_k, minus self-pairs on the diagonal
        o += (np.outer(cnt, cnt) - np.diag(cnt)) / (len(u) - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d2 = _delta2(values, n_c, level)
    expected = (np.outer(n_c, n_c) * d2).sum()
    if expected == 0:
        return math.nan
    return float(1.0 - (n - 1) * (o * d2).sum() / expected)


def icc_oneway(groups) -> dict:
    """One-way random-effects ICC for ratings grouped by target (Shrout & Fleiss 1979, case 1).

    Works for unequal group sizes (incomplete rating designs). With a groups, N ratings:
    MSB = sum n_i (mean_i - mean)^2 / (a - 1), MSW = sum (x - mean_i)^2 / (N - a),
    n0 = (N - sum n_i^2 / N) / (a - 1);
    ICC(1,1) = (MSB - MSW) / (MSB + (n0 - 1) MSW), ICC(1,k) = (MSB - MSW) / MSB
    (reliability of the mean of n0 ratings). Groups with fewer than one rating are ignored.
    """
    groups = [np.asarray(g, dtype=np.float64) for g in groups if len(g) > 0]
    a = len(groups)
    n_i = np.array([len(g) for g in groups], dtype=np.float64)
    N = n_i.sum()
    if a < 2 or N - a < 1:
        return {"icc1": math.nan, "icc1k": math.nan, "k0": math.nan, "groups": a, "n": int(N)}
    grand = np.concatenate(groups).mean()
    msb = sum(len(g) * (g.mean() - grand) ** 2 for g in groups) / (a - 1)
    msw = sum(((g - g.mean()) ** 2).sum() for g in groups) / (N - a)
    n0 = (N - (n_i ** 2).sum() / N) / (a - 1)
    icc1 = (msb - msw) / (msb + (n0 - 1) * msw) if msb + (n0 - 1) * msw > 0 else math.nan
    icc1k = (msb - msw) / msb if msb > 0 else math.nan
    return {"icc1": float(icc1), "icc1k": float(icc1k), "k0": float(n0), "groups": a, "n": int(N)}


def icc_twoway(matrix) -> dict:
    """Two-way ICCs for a complete (targets x raters) matrix (Shrout & Fleiss 1979, cases 2, 3).

    With BMS, JMS, EMS the target, rater and residual mean squares, n targets, k raters:
    ICC(2,1) = (BMS - EMS) / (BMS + (k-1) EMS + k (JMS - EMS) / n),
    ICC(2,k) = (BMS - EMS) / (BMS + (JMS - EMS) / n),
    ICC(3,1) = (BMS - EMS) / (BMS + (k-1) EMS), ICC(3,k) = (BMS - EMS) / BMS.
    """
    x = np.asarray(matrix, dtype=np.float64)
    if x.ndim != 2 or np.isnan(x).any():
        raise ValueError("icc_twoway needs a complete 2-D targets x raters matrix")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    bms, jms, ems = ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))
    return {"icc2": float((bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)),
            "icc2k": float((bms - ems) / (bms + (jms - ems) / n)),
            "icc3": float((bms - ems) / (bms + (k - 1) * ems)),
            "icc3k": float((bms - ems) / bms)}


def paired_wilcoxon(a, b) -> dict:
    """Wilcoxon signed-rank test on paired values (scipy; zero differences dropped, 'wilcox').

    p-value: the exact null distribution when the |differences| have no ties and n <= 50,
    else the normal approximation with tie correction (deterministic; scipy's default would
    fall back to a permutation test, slow and seed-dependent for n > 13).
    Effect size: matched-pairs rank-biserial r = (W+ - W-) / (W+ + W-) (Kerby 2014).
    All-zero differences give p = 1.
    """
    from scipy.stats import rankdata, wilcoxon

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    nz = d[d != 0]
    if len(nz) == 0:
        return {"statistic": 0.0, "p": 1.0, "method": "none", "effect_size": 0.0, "n": int(len(d))}
    ranks = rankdata(np.abs(nz))
    w_plus, w_minus = ranks[nz > 0].sum(), ranks[nz < 0].sum()
    exact = len(nz) <= 50 and len(np.unique(np.abs(nz))) == len(nz)
    res = wilcoxon(nz, method="exact" if exact else "approx")
    return {"statistic": float(res.statistic), "p": float(res.pvalue), "method": "exact" if exact else "normal",
            "effect_size": float((w_plus - w_minus) / (w_plus + w_minus)), "n": int(len(d))}


def mann_whitney(a, b) -> dict:
    """Two-sided Mann-Whitney U test; effect size rank-biserial r = 2 U_a / (n_a n_b) - 1."""
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return {"statistic": math.nan, "p": math.nan, "effect_size": math.nan, "n": 0}
    res = mannwhitneyu(a, b, alternative="two-sided")
    return {"statistic": float(res.statistic), "p": float(res.pvalue),
            "effect_size": float(2 * res.statistic / (len(a) * len(b)) - 1), "n": int(len(a) + len(b))}
