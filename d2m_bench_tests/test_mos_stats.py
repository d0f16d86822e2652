"""MOS statistics against hand computation and published values."""
import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from d2m_bench.mos import stats

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12
# units, values 1..5, missing values. Published: nominal .743, ordinal .815, interval .849, ratio .797.
KRIPP_2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
])
# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges. Published (Table 4): ICC(1,1) .17,
# ICC(2,1) .29, ICC(3,1) .71, ICC(1,4) .44, ICC(2,4) .62, ICC(3,4) .91.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])


def test_t_interval_by_hand():
    # scores 4, 5, 3, 4: mean 4, s^2 = (0 + 1 + 1 + 0) / 3 = 2/3, half = t(.975, 3) * sqrt(2/3) / 2
    half = student_t.ppf(0.975, 3) * math.sqrt(2 / 3) / 2
    assert half == pytest.approx(3.182446 * 0.816497 / 2, rel=1e-5)  # table value t(.975, 3) = 3.182
    lo, hi = stats.t_interval([4, 5, 3, 4])
    assert (lo, hi) == pytest.approx((4 - half, 4 + half))
    lo90, hi90 = stats.t_interval([4, 5, 3, 4], level=0.90)
    assert hi90 - lo90 < hi - lo
    assert all(math.isnan(v) for v in stats.t_interval([3]))


@pytest.mark.parametrize("level,published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)])
def test_krippendorff_alpha_published_example(level, published):
    assert stats.krippendorff_alpha(KRIPP_2011, level=level) == pytest.approx(published, abs=5e-4)


def test_krippendorff_alpha_unit_lists_equal_matrix_and_edge_cases():
    units = [col[~np.isnan(col)] for col in KRIPP_2011.T]
    assert stats.krippendorff_alpha(units, level="interval") == pytest.approx(stats.krippendorff_alpha(KRIPP_2011))
    # perfect agreement -> 1; hand example: two units (1,1) and (2,2) give D_o = 0.
    assert stats.krippendorff_alpha([[1, 1], [2, 2]]) == pytest.approx(1.0)
    # Units (1,2) and (2,1): o_12 = o_21 = 2, n_1 = n_2 = 2, n = 4; interval d2 = 1:
    # alpha = 1 - (n-1) * sum o d2 / sum n_c n_k d2 = 1 - 3 * 4 / (2*2*1 * 2) = -0.5.
    assert stats.krippendorff_alpha([[1, 2], [2, 1]]) == pytest.approx(-0.5)
    assert math.isnan(stats.krippendorff_alpha([[3, 3], [3, 3]]))  # no variation at all
    assert math.isnan(stats.krippendorff_alpha([[3], [4]]))  # nothing pairable
    with pytest.raises(ValueError):
        stats.krippendorff_alpha([[1, 2]], level="cardinal")


def test_icc_published_example():
    one = stats.icc_oneway(list(SHROUT_FLEISS))
    two = stats.icc_twoway(SHROUT_FLEISS)
    assert one["icc1"] == pytest.approx(0.17, abs=0.005)
    assert one["icc1k"] == pytest.approx(0.44, abs=0.005)
    assert two["icc2"] == pytest.approx(0.29, abs=0.005)
    assert two["icc2k"] == pytest.approx(0.62, abs=0.005)
    assert two["icc3"] == pytest.approx(0.71, abs=0.005)
    assert two["icc3k"] == pytest.approx(0.91, abs=0.005)


def test_icc_oneway_unbalanced_by_hand():
    # groups [1,2,3] and [5,7]: grand mean 18/5 = 3.6; MSB = (3*(2-3.6)^2 + 2*(6-3.6)^2) / 1 = 19.2;
    # MSW = ((1+0+1) + (1+1)) / (5-2) = 4/3; n0 = (5 - (9+4)/5) / 1 = 2.4;
    # ICC(1) = (19.2 - 4/3) / (19.2 + 1.4 * 4/3) = 17.8667 / 21.0667 = 0.848101
    res = stats.icc_oneway([[1, 2, 3], [5, 7]])
    assert res["k0"] == pytest.approx(2.4)
    assert res["icc1"] == pytest.approx((19.2 - 4 / 3) / (19.2 + 1.4 * 4 / 3))
    assert res["icc1k"] == pytest.approx((19.2 - 4 / 3) / 19.2)


def test_holm_by_hand():
    # sorted p: .005 (x4 = .02), .01 (x3 = .03), .03 (x2 = .06), .04 (x1 = .04 -> max with .06 = .06)
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    out = stats.holm([0.01, NAN, 0.02])  # NaN neither counted nor adjusted
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_bootstrap_two_way_deterministic_and_sane():
    rng = np.random.default_rng(3)
    r = np.repeat(np.arange(10), 8)
    i = np.tile(np.arange(8), 10)
    s = np.clip(np.round(3 + 0.5 * rng.standard_normal(80) + 0.3 * (r % 3)), 1, 5)
    a = stats.bootstrap_two_way(s, r, i, n_boot=500, seed=7)
    b = stats.bootstrap_two_way(s, r, i, n_boot=500, seed=7)
    c = stats.bootstrap_two_way(s, r, i, n_boot=500, seed=8)
    assert a == b
    assert (a["low"], a["high"]) != (c["low"], c["high"])
    assert a["low"] < s.mean() < a["high"] and a["n_valid"] == 500
    # Chunking must not change the replicate stream.
    assert stats.bootstrap_two_way(s, r, i, n_boot=500, seed=7, chunk=33) == a
    # Constant scores: every replicate mean is that score.
    k = stats.bootstrap_two_way(np.full(80, 4.0), r, i, n_boot=100, seed=0)
    assert k["low"] == k["high"] == 4.0


def test_bootstrap_two_way_resamples_raters_not_just_ratings():
    # Rater 0 gives only 1s, rater 1 only 5s, 50 items each: the rater effect dominates, so a
    # two-way bootstrap must span nearly the whole range (resamples with both raters the same),
    # while resampling 100 single ratings would give a narrow interval around 3.
    r = np.repeat([0, 1], 50)
    i = np.tile(np.arange(50), 2)
    s = np.where(r == 0, 1.0, 5.0)
    res = stats.bootstrap_two_way(s, r, i, n_boot=400, seed=1)
    assert res["low"] == 1.0 and res["high"] == 5.0


def test_paired_wilcoxon_and_mann_whitney_by_hand():
    # differences 1,2,3,4,5 (all positive): W- = 0, exact two-sided p = 2 / 2^5 = 0.0625, r = 1.
    res = stats.paired_wilcoxon([2, 4, 6, 8, 10], [1, 2, 3, 4, 5])
    assert res["p"] == pytest.approx(0.0625) and res["effect_size"] == 1.0 and res["statistic"] == 0.0
    assert stats.paired_wilcoxon([3, 3], [3, 3])["p"] == 1.0
    # a = [4, 5], b = [1, 2]: U_a = 4 (every a beats every b) -> r = 2*4/4 - 1 = 1.
    mw = stats.mann_whitney([4, 5], [1, 2])
    assert mw["statistic"] == 4 and mw["effect_size"] == 1.0


def test_paired_wilcoxon_ties_use_normal_approximation():
    # |d| = 1, 1, 2, 2, 2, 3 (ties), all positive: ranks 1.5, 1.5, 4, 4, 4, 6 -> W- = 0, T+ = 21.
    # Normal approximation: mean n(n+1)/4 = 10.5, var n(n+1)(2n+1)/24 - sum(t^3 - t)/48
    # = 22.75 - (6 + 24)/48 = 22.125; z = (0 - 10.5)/sqrt(22.125) = -2.2323, p = 2 Phi(z) = 0.02560.
    from scipy.stats import norm

    res = stats.paired_wilcoxon([2, 2, 3, 3, 3, 4], [1, 1, 1, 1, 1, 1])
    assert res["method"] == "normal"
    assert res["p"] == pytest.approx(2 * norm.cdf(-10.5 / math.sqrt(22.125)))
    assert stats.paired_wilcoxon([2, 4, 6, 8, 10], [1, 2, 3, 4, 5])["method"] == "exact"
