"""Hand-computed cases for the beat metrics (pure functions)."""
import math

import numpy as np
import pytest

from d2m_bench.metrics import beats as bm


def test_n_bins_is_ceil_of_seconds():
    assert bm.n_bins(44100, 22050) == 2
    assert bm.n_bins(44032, 22050) == 2      # D2M-GAN high output (1.997 s)
    assert bm.n_bins(45056, 22050) == 3      # AAC-padded: the reason for a length policy
    assert bm.n_bins(132300, 22050) == 6


def test_event_bins_floor_and_collapse():
    # 0.99 and 1.01 s land in different bins; 0.01 and 0.98 s share bin 0.
    assert bm.event_bins([0.01, 0.98, 1.01], 3).tolist() == [1, 1, 0]
    assert bm.event_bins([0.99, 2.5], 3).tolist() == [1, 0, 1]
    assert bm.event_bins([], 2).tolist() == [0, 0]
    assert bm.event_bins([2.3], 2).tolist() == [0, 0]  # past the clip after trimming


def test_coverage_hit_hand_case():
    # gt bins [1,1,1], pred bins [1,0,1]: B_t = 3, B_g = 2, B_a = 2
    r = bm.coverage_hit_d2m([1, 1, 1], [1, 0, 1])
    assert (r["gt_bins"], r["pred_bins"], r["hit_bins"]) == (3, 2, 2)
    assert r["beats_coverage"] == pytest.approx(2 / 3) and r["beats_hit"] == pytest.approx(2 / 3)


def test_coverage_above_one_and_hit_below_coverage():
    # gt occupies bin 0 only; pred occupies both: coverage 2, hit 1
    r = bm.coverage_hit_d2m([1, 0], [1, 1])
    assert r["beats_coverage"] == 2.0 and r["beats_hit"] == 1.0
    # gt occupies bin 1, pred bin 0: coverage 1 (same count), hit 0 (no shared bin)
    r = bm.coverage_hit_d2m([0, 1], [1, 0])
    assert r["beats_coverage"] == 1.0 and r["beats_hit"] == 0.0


def test_hit_never_exceeds_coverage_random():
    rng = np.random.default_rng(1)
    for _ in range(500):
        n = int(rng.integers(1, 8))
        gt, pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
        r = bm.coverage_hit_d2m(gt, pred)
        if gt.sum():
            assert r["beats_hit"] <= r["beats_coverage"]
            assert 0 <= r["beats_hit"] <= 1


def test_gt_without_onsets_is_nan_not_a_crash():
    r = bm.coverage_hit_d2m([0, 0], [1, 0])
    assert math.isnan(r["beats_coverage"]) and math.isnan(r["beats_hit"])


def test_bin_count_mismatch_raises():
    with pytest.raises(ValueError):
        bm.bin_counts([1, 0, 1], [1, 0])


def test_loris_precision_recall_and_truncation():
    # gt 3 bins truncated to pred's 2: gt [1,1], pred [1,0] -> B_a=1, B_g=1, B_t=2
    r = bm.coverage_hit_loris([1, 1, 1], [1, 0])
    assert r["loris_coverage"] == 1.0 and r["loris_hit"] == 0.5
    # zero denominators give 0 (LORIS convention), never NaN
    r = bm.coverage_hit_loris([0, 0], [0, 0])
    assert r["loris_coverage"] == 0.0 and r["loris_hit"] == 0.0
    assert bm.harmonic_mean(1.0, 0.5) == pytest.approx(2 / 3)
    assert bm.harmonic_mean(0.0, 0.0) == 0.0


def test_tolerance_hand_case():
    ref = [0.5, 1.0, 1.5]
    est = [0.52, 1.08, 1.45, 1.9]  # 0.02 ok, 0.08 > 0.07 miss, 0.05 ok, 1.9 unmatched
    r = bm.tolerance_scores(ref, est, window=0.07)
    assert r["matched"] == 2
    assert r["precision"] == pytest.approx(2 / 4) and r["recall"] == pytest.approx(2 / 3)
    assert r["f_measure"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_tolerance_one_to_one():
    # two estimates near one reference count once
    r = bm.tolerance_scores([1.0], [0.99, 1.01], window=0.07)
    assert r["matched"] == 1 and r["precision"] == 0.5 and r["recall"] == 1.0


def test_tolerance_empty_sets():
    r = bm.tolerance_scores([], [0.5])
    assert math.isnan(r["recall"])
    r = bm.tolerance_scores([0.5], [])
    assert r["precision"] == 0.0 and r["recall"] == 0.0 and r["f_measure"] == 0.0


def test_matching_equals_mir_eval_bipartite():
    mir_eval = pytest.importorskip("mir_eval")
    rng = np.random.default_rng(7)
    for _ in range(300):
        ref = np.sort(rng.uniform(0, 3, rng.integers(0, 12)))
        est = np.sort(rng.uniform(0, 3, rng.integers(0, 12)))
        expected = len(mir_eval.util.match_events(ref, est, 0.07))
        assert bm.match_events(ref, est, 0.07) == expected
