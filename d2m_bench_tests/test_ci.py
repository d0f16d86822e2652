"""Bootstrap confidence intervals in eval results: percentile and BCa against scipy.stats.bootstrap,
the FAD interval against explicit resampling, FAD-inf against a hand-done line fit, the [ci] table
kept out of the protocol hash, and intervals in a real eval result."""
import json
import math

import numpy as np
import pytest
from scipy import stats

from d2m_bench.results import intervals as iv
from d2m_bench.errors import UserError
from d2m_bench.metrics.fad import frechet_audio_distance
from d2m_bench.protocol import load_protocol


def _scipy(data, statistic, method, seed, n_resamples=2000, paired=False):
    res = stats.bootstrap(data, statistic, n_resamples=n_resamples, method=method, paired=paired,
                          vectorized=True, confidence_level=0.95, rng=np.random.default_rng(seed))
    return [res.confidence_interval.low, res.confidence_interval.high]


@pytest.mark.parametrize("seed", [0, 7])
def test_mean_ci_equals_scipy_percentile_and_bca(seed):
    x = np.random.default_rng(3).exponential(size=40)  # skewed: BCa differs from percentile
    ci = iv.mean_ci(x, level=0.95, n_resamples=2000, seed=seed)
    assert ci["seed"] == seed and ci["n_resamples"] == 2000 and ci["level"] == 0.95
    np.testing.assert_allclose(ci["percentile"], _scipy((x,), np.mean, "percentile", seed), rtol=1e-12)
    np.testing.assert_allclose(ci["bca"], _scipy((x,), np.mean, "BCa", seed), rtol=1e-12)
    assert ci["bca"] != ci["percentile"]


def test_bca_acceleration_by_hand():
    """Tiny case: jackknife means of [0, 0, 3] are 1.5, 1.5, 0; U = mean - theta_i = -0.5, -0.5, 1;
    a = sum U^3 / (6 (sum U^2)^1.5) = 0.75 / (6 * 1.5^1.5)."""
    reps = np.array([0.0, 1.0, 1.0, 2.0, 3.0])
    lo, hi, why = iv.bca_interval(reps, 1.0, [1.5, 1.5, 0.0], 0.9)
    a = 0.75 / (6 * 1.5 ** 1.5)
    z0 = stats.norm.ppf((1 + 3) / 10)  # one replicate below 1.0, three at or below
    q = [stats.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))) for z in stats.norm.ppf([0.05, 0.95])]
    assert why is None
    np.testing.assert_allclose([lo, hi], np.percentile(reps, [100 * q[0], 100 * q[1]]), rtol=1e-12)


def test_harmonic_mean_ci_equals_scipy_paired():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.3, 1, 30), rng.uniform(0, 0.8, 30)

    def hm(x, y, axis=-1):
        mx, my = x.mean(axis=axis), y.mean(axis=axis)
        return 2 * mx * my / (mx + my)

    ci = iv.harmonic_mean_ci(a, b, seed=5)
    np.testing.assert_allclose(ci["percentile"], _scipy((a, b), hm, "percentile", 5, paired=True), rtol=1e-12)
    np.testing.assert_allclose(ci["bca"], _scipy((a, b), hm, "BCa", 5, paired=True), rtol=1e-12)


def test_constant_scores_give_a_point_interval_and_one_clip_none():
    ci = iv.mean_ci([1.0] * 9, seed=0)
    assert ci["percentile"] == [1.0, 1.0] and ci["bca"] == [1.0, 1.0]
    assert iv.mean_ci([0.5]) is None


def _clips(rng, n, shift=0.0, d=4):
    return [rng.normal(shift, 1.0, (int(rng.integers(2, 5)), d)) for _ in range(n)]


def test_fad_bootstrap_equals_explicit_resampling():
    rng = np.random.default_rng(2)
    pred, gt = _clips(rng, 12, 0.5), _clips(rng, 12)
    ci = iv.fad_bootstrap(pred, gt, n_resamples=50, seed=3)
    # the same clip draws, examples concatenated by hand, FAD from the plain function
    reps = [frechet_audio_distance(np.concatenate([pred[i] for i in idx]), np.concatenate([gt[i] for i in idx]))
            for idx in np.random.default_rng(3).integers(0, 12, (50, 12))]
    np.testing.assert_allclose(ci["percentile"], np.percentile(reps, [2.5, 97.5]), rtol=1e-9)
    full = frechet_audio_distance(np.concatenate(pred), np.concatenate(gt))
    jack = [frechet_audio_distance(np.concatenate(pred[:i] + pred[i + 1:]), np.concatenate(gt[:i] + gt[i + 1:]))
            for i in range(12)]
    lo, hi, _ = iv.bca_interval(reps, full, jack, 0.95)
    np.testing.assert_allclose(ci["bca"], [lo, hi], rtol=1e-9)


def test_fad_inf_is_the_intercept_of_fad_against_one_over_n():
    rng = np.random.default_rng(4)
    d = 8
    pred, gt = rng.normal(0, 1, (400, d)), rng.normal(0, 1, (4000, d))  # same distribution: true FAD 0
    out = iv.fad_inf(pred, gt, steps=5, min_fraction=0.2, seed=9)
    assert out["sizes"] == [80, 160, 240, 320, 400]
    draw = np.random.default_rng(9)
    fads = [frechet_audio_distance(pred[draw.choice(400, size=n, replace=False)], gt) for n in out["sizes"]]
    np.testing.assert_allclose(out["fad"], fads, rtol=1e-12)
    x, y = 1 / np.array(out["sizes"], float), np.array(fads)
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    assert out["slope"] == pytest.approx(slope, rel=1e-9)
    assert out["value"] == pytest.approx(y.mean() - slope * x.mean(), rel=1e-9, abs=1e-12)
    # the bias shrinks: the extrapolation lies nearer the true 0 than the plain FAD on all 400
    assert abs(out["value"]) < fads[-1]


def test_per_clip_fad_undefined_below_two_examples():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    assert iv.per_clip_fad([a, a[:1]], [b, b]) == [frechet_audio_distance(a, b), None]


def test_ci_table_is_validated_and_not_hashed(tmp_path):
    base = load_protocol("d2m-aistpp-2s")
    params = {k: v for k, v in base.params.items() if k != "ci"}
    other = base.with_overrides({"ci.level": 0.9, "ci.n_resamples": 500, "ci.seed": 4})
    assert other.params["ci"]["level"] == 0.9 and other.hash == base.hash
    from d2m_bench.io.cache import config_digest

    assert base.hash == config_digest(params)  # what results/reported pins: unchanged by [ci]
    with pytest.raises(UserError, match="ci.level"):
        base.with_overrides({"ci.level": 1.5}).validate_eval()
    with pytest.raises(UserError, match="unknown key"):
        base.with_overrides({"ci.replicates": 5}).validate_eval()


@pytest.fixture(scope="module")
def demo_result(tmp_path_factory):
    from d2m_bench import evaluate
    from d2m_bench.synth.demo import make_demo

    root = make_demo(tmp_path_factory.mktemp("demo") / "demo", n=10)
    out = {}
    for seed in (0, 1):
        res = evaluate(root / "generated", root / "gt", workers=1, cache=False,
                       overrides={"ci.seed": seed, "ci.n_resamples": 999})
        out[seed] = json.loads(json.dumps(res.to_dict()))
    return out


def test_eval_result_carries_seeded_intervals(demo_result):
    doc = demo_result[0]
    for name in ("beats_coverage", "beats_hit"):
        m = doc["aggregate"][name]
        vals = np.array([r[name] for r in doc["per_clip"]])
        assert m["ci"]["seed"] == 0 and m["ci"]["n_resamples"] == 999 and m["ci"]["level"] == 0.95
        for method in ("percentile", "BCa"):
            want = _scipy((vals,), np.mean, method, 0, n_resamples=999)
            if not all(map(math.isfinite, want)):
                continue  # scipy returns nan where BCa is degenerate; ours records a point or None
            np.testing.assert_allclose(m["ci"][method.lower()], want, rtol=1e-12)
        assert m["ci"]["percentile"][0] <= m["value"] <= m["ci"]["percentile"][1]
    # another seed moves the bounds, never the point value or the protocol hash
    other = demo_result[1]
    assert other["aggregate"]["beats_hit"]["value"] == doc["aggregate"]["beats_hit"]["value"]
    assert other["protocol"]["hash"] == doc["protocol"]["hash"]
    assert other["aggregate"]["beats_hit"]["ci"]["seed"] == 1


def test_eval_result_keeps_event_times(demo_result):
    from d2m_bench.metrics import beats as bm

    for r in demo_result[0]["per_clip"]:
        assert isinstance(r["gt_events"], list) and isinstance(r["pred_events"], list)
        gt = bm.event_bins(r["gt_events"], bm.n_bins(r["gt_samples"], 22050, 1.0), 1.0)
        assert int(np.count_nonzero(gt)) == r["gt_bins"]


def test_eval_fad_carries_interval_fad_inf_and_per_clip_values(tmp_path):
    import shutil

    from d2m_bench import evaluate
    from d2m_bench.synth.synthetic import make_tiny_dataset

    ds = make_tiny_dataset(tmp_path / "ds", n_train=6, n_test=6)
    gts = sorted((ds / "audio" / "test").glob("*.wav"))
    pred = tmp_path / "pred"
    pred.mkdir()
    for i, g in enumerate(gts):
        shutil.copyfile(gts[(i + 1) % len(gts)], pred / g.name)
    res = evaluate(pred, ds / "audio" / "test", data=ds, workers=1, cache=False,
                   overrides={"genre.embedder": "mfcc-chroma", "alignment.enabled": False, "ci.seed": 5,
                              "ci.fad_resamples": 60})
    fad = res.aggregate["fad_mfcc_chroma"]
    assert fad["ci"]["seed"] == 5 and fad["ci"]["n_resamples"] == 60
    assert fad["ci"]["percentile"][0] <= fad["ci"]["percentile"][1]
    inf = fad["fad_inf"]
    # the largest subset is every generated example: FAD there is the plain value
    assert inf["sizes"][-1] == fad["pred_examples"]
    assert inf["fad"][-1] == pytest.approx(fad["value"], rel=1e-9)
    per_clip = [r["fad_mfcc_chroma_clip"] for r in res.per_clip]
    assert len(per_clip) == 6 and all(v is not None and v >= 0 for v in per_clip)  # 2 examples a side: defined
    assert res.aggregate["genre_accuracy_mfcc_chroma"]["ci"]["seed"] == 5
