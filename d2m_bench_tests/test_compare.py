"""`d2m-bench compare`: hand-computed Wilcoxon / Holm / effect sizes, paired bootstrap CI against
scipy.stats.bootstrap, refusal of incomparable results, pairing by clip id, and two demo systems."""
import csv
import json
import shutil

import numpy as np
import pytest
from scipy import stats

from d2m_bench.results.compare import compare, holm, load_result
from d2m_bench.errors import UserError


def _doc(tmp_path, name, values, *, proto_hash="h" * 64, genre_key=None, ids=None):
    """A minimal eval result: metric -> per-clip values, aggregates their means."""
    ids = ids or [f"c{i}" for i in range(len(next(iter(values.values()))))]
    rows = [{"id": i, **{m: v[k] for m, v in values.items()}} for k, i in enumerate(ids)]
    agg = {m: {"value": float(np.mean(v)), "n": len(v), "higher_is_better": True, "ci_column": m}
           for m, v in values.items()}
    lb = [{"metric": m, "comparable_key": genre_key if (genre_key and m.startswith("genre")) else ""} for m in values]
    doc = {"tool": "d2m-bench", "complete": True, "system": name, "aggregate": agg, "per_clip": rows,
           "protocol": {"name": "p", "hash": proto_hash, "params": {"ci": {"seed": 3, "n_resamples": 999}}},
           "excluded": {"count": 0, "clips": []}, "leaderboard": lb}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


A = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
D1 = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]     # all positive
D2 = [0.1, 0.2, 0.3, 0.4, 0.5, -0.6]    # one negative, the largest


@pytest.fixture
def two(tmp_path):
    a = _doc(tmp_path, "sysA", {"m1": A, "m2": A})
    b = _doc(tmp_path, "sysB", {"m1": [x + d for x, d in zip(A, D1)], "m2": [x + d for x, d in zip(A, D2)]})
    return a, b


def test_hand_computed_wilcoxon_holm_effect_sizes(two):
    doc = compare([load_result(p) for p in two])
    r1, r2 = doc["comparisons"]
    # m1: all six differences positive -> W- = 0; exact two-sided p = 2 / 2^6
    assert r1["p"] == pytest.approx(2 / 64) and r1["p_method"] == "exact"
    assert r1["rank_biserial"] == pytest.approx(1.0)
    # m2: W- = 6 (rank of 0.6), W+ = 15; subsets of {1..6} with sum <= 6: 1+1+1+2+2+3+4 = 14
    assert r2["wilcoxon_statistic"] == pytest.approx(6.0)
    assert r2["p"] == pytest.approx(2 * 14 / 64)
    assert r2["rank_biserial"] == pytest.approx((15 - 6) / 21)
    # Holm over two tests: 2 * 0.03125, then max(that, 0.4375)
    assert r1["p_holm"] == pytest.approx(0.0625) and r2["p_holm"] == pytest.approx(0.4375)
    assert r1["difference"] == pytest.approx(0.35) and r2["difference"] == pytest.approx(0.15)
    d2 = np.array(D2)
    assert r2["cohen_dz"] == pytest.approx(d2.mean() / d2.std(ddof=1))
    assert not r1["significant"] and r1["better"] == "-"
    assert doc["ci"]["seed"] == 3 and doc["ci"]["n_resamples"] == 999  # from the results' protocol


def test_paired_ci_equals_scipy_bootstrap(two):
    a, b = (load_result(p) for p in two)
    doc = compare([a, b], seed=11, n_resamples=1500)
    xa = np.array([r["m2"] for r in a["per_clip"]])
    xb = np.array([r["m2"] for r in b["per_clip"]])
    for method, keys in (("percentile", ("ci_low", "ci_high")), ("BCa", ("ci_bca_low", "ci_bca_high"))):
        res = stats.bootstrap((xa, xb), lambda x, y, axis=-1: (y - x).mean(axis=axis), paired=True,
                              vectorized=True, n_resamples=1500, method=method, rng=np.random.default_rng(11))
        row = doc["comparisons"][1]
        np.testing.assert_allclose([row[keys[0]], row[keys[1]]],
                                   [res.confidence_interval.low, res.confidence_interval.high], rtol=1e-12)


def test_holm_against_definition():
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    # sorted 0.005, 0.01, 0.03, 0.04, 0.5 -> x5, x4, x3, x2, x1, running max, capped at 1
    want = {3: 0.025, 0: 0.04, 2: 0.09, 1: 0.09, 4: 0.5}
    assert holm(p) == pytest.approx([want[i] for i in range(5)])


def test_three_systems_holm_across_metrics_and_pairs(tmp_path):
    rng = np.random.default_rng(0)
    vals = {s: {"m1": rng.uniform(size=20).tolist(), "m2": rng.uniform(size=20).tolist()} for s in "xyz"}
    docs = [load_result(_doc(tmp_path, s, v)) for s, v in vals.items()]
    doc = compare(docs)
    assert len(doc["comparisons"]) == 6  # 3 pairs x 2 metrics, one family
    ps = [stats.wilcoxon(np.array(vals[r["system_b"]][r["metric"]]) - np.array(vals[r["system_a"]][r["metric"]])).pvalue
          for r in doc["comparisons"]]
    np.testing.assert_allclose([r["p"] for r in doc["comparisons"]], ps, rtol=1e-12)
    order = np.argsort(ps)
    adj = np.empty(6)
    running = 0
    for k, i in enumerate(order):
        running = max(running, min(1, (6 - k) * ps[i]))
        adj[i] = running
    np.testing.assert_allclose([r["p_holm"] for r in doc["comparisons"]], adj, rtol=1e-12)


def test_refuses_other_protocol_hash_in_one_line(tmp_path, cli):
    a = _doc(tmp_path, "a", {"m1": A})
    b = _doc(tmp_path, "b", {"m1": A}, proto_hash="f" * 64)
    proc = cli("compare", a, b)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "protocol hashes differ" in proc.stderr and "ffffffffffff" in proc.stderr


def test_refuses_other_comparable_key(tmp_path):
    a = _doc(tmp_path, "a", {"genre_accuracy": A}, genre_key="vggish:official")
    b = _doc(tmp_path, "b", {"genre_accuracy": A}, genre_key="vggish:0123456789ab")
    with pytest.raises(UserError, match="comparable keys differ for genre_accuracy: a vggish:official, b vggish:0123"):
        compare([load_result(a), load_result(b)])


def test_pairs_by_id_and_lists_one_sided_ids(tmp_path, cli):
    a = _doc(tmp_path, "a", {"m1": A}, ids=["c0", "c1", "c2", "c3", "c4", "only_a"])
    b = _doc(tmp_path, "b", {"m1": [0.9, 0.5, 0.1, 0.2, 0.7, 0.4]}, ids=["only_b", "c4", "c3", "c2", "c1", "c0"])
    doc = compare([load_result(a), load_result(b)])
    assert doc["pairing"][0]["only_a"] == ["only_a"] and doc["pairing"][0]["only_b"] == ["only_b"]
    row = doc["comparisons"][0]
    assert row["n"] == 5
    # c0..c4 in a: 0.1..0.5; in b: c0=0.4, c1=0.7, c2=0.2, c3=0.1, c4=0.5 (listed in another order)
    assert row["difference"] == pytest.approx(np.mean([0.3, 0.5, -0.1, -0.3, 0.0]))
    out = tmp_path / "cmp"
    proc = cli("compare", a, b, "--out-dir", out)
    assert proc.returncode == 0, proc.stderr
    assert "only in a: only_a" in proc.stdout and "only in b: only_b" in proc.stdout
    rows = list(csv.DictReader(open(out / "compare.csv")))
    assert rows[0]["metric"] == "m1" and float(rows[0]["difference"]) == pytest.approx(row["difference"])
    assert json.loads((out / "compare.json").read_text())["comparisons"][0]["n"] == 5


def test_not_a_result_is_one_line(tmp_path, cli):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    proc = cli("compare", bad, bad)
    assert proc.returncode == 2 and "not a d2m-bench eval result" in proc.stderr


def test_two_demo_systems(tmp_path, cli):
    """The demo's generated clips against an exact copy of the gt (a perfect system) on the same clips."""
    from d2m_bench.synth.demo import make_demo

    root = make_demo(tmp_path / "demo")
    shutil.copytree(root / "gt", root / "perfect")
    for name, pred in (("demo", "generated"), ("perfect", "perfect")):
        proc = cli("eval", "--pred", root / pred, "--gt", root / "gt", "--system", name, "-q", "--no-cache",
                   "--out", tmp_path / f"{name}.json", "-j", "1")
        assert proc.returncode == 0, proc.stderr
    proc = cli("compare", tmp_path / "demo.json", tmp_path / "perfect.json", "--out-dir", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    demo = json.loads((tmp_path / "demo.json").read_text())["per_clip"]
    for row in doc["comparisons"]:
        d = np.array([1.0 - r[row["metric"]] for r in demo])  # the perfect system scores 1 on every clip
        assert row["difference"] == pytest.approx(d.mean())
        nz = d[d != 0]
        # every nonzero difference positive: W- = 0; exact p = 2 / 2^k, times 2 tests (Holm), capped
        assert (nz > 0).all() and len(np.unique(nz)) == len(nz)  # no ties: the exact test applies
        assert row["p"] == pytest.approx(min(1.0, 2 / 2 ** len(nz)))
        assert row["p_holm"] == pytest.approx(min(1.0, 2 * row["p"]))
        lo, hi = np.percentile(d[np.random.default_rng(0).integers(0, len(d), (2000, len(d)))].mean(axis=1), [2.5, 97.5])
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
        # beats metrics are shown in %: their difference in percentage points, one decimal
        assert f"{100 * row['difference']:+.1f} pp" in proc.stdout


def test_same_system_name_twice_is_told_apart_by_file(tmp_path):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    a = _doc(a_dir, "x", {"m1": A})
    b_dir.mkdir()
    b = _doc(b_dir, "x", {"m1": [v + 0.1 for v in A]})
    b2 = b_dir / "y.json"
    b.rename(b2)
    doc = compare([load_result(a), load_result(b2)])
    assert [r["system"] for r in doc["results"]] == ["x (x.json)", "x (y.json)"]
    assert doc["comparisons"][0]["system_b"] == "x (y.json)"
