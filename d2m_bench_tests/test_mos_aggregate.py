"""MOS aggregation: hand-computed tables, screening cases, determinism, bad CSVs, leaderboard rows."""
import csv
import json
import math
import re

import numpy as np
import pytest
from scipy.stats import t as student_t

from d2m_bench.errors import UserError
from d2m_bench.results.leaderboard import build_leaderboard
from d2m_bench.mos import stats
from d2m_bench.mos.aggregate import aggregate, write_outputs
from d2m_bench.mos.ratings import read_ratings
from d2m_bench.mos.screening import screen
from d2m_bench.protocol import load_protocol

FIELDS = ["rater", "item", "system", "aspect", "score", "is_trap", "expected_score", "is_reference", "playback_complete"]

# Hand table (aspect quality): 3 raters x 2 items x 2 systems.
#            A/i1 A/i2 B/i1 B/i2
#   r1        4    5    2    3
#   r2        3    4    2    2
#   r3        5    4    1    3
HAND = {"r1": (4, 5, 2, 3), "r2": (3, 4, 2, 2), "r3": (5, 4, 1, 3)}


def write_csv(path, rows, fields=FIELDS):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


def hand_rows(aspect="quality"):
    rows = []
    for rater, scores in HAND.items():
        for (system, item), score in zip([("A", "i1"), ("A", "i2"), ("B", "i1"), ("B", "i2")], scores):
            rows.append({"rater": rater, "item": item, "system": system, "aspect": aspect, "score": score,
                         "playback_complete": 1})
    return rows


def test_hand_table_statistics(tmp_path):
    doc = aggregate(write_csv(tmp_path / "r.csv", hand_rows()), n_boot=300, seed=1)
    by = {s["system"]: s for s in doc["systems"]}
    a, b = by["A"], by["B"]
    # A: 4,5,3,4,5,4 -> mean 25/6, median 4; deviations -1/6,5/6,-7/6,-1/6,5/6,-1/6 ->
    # sum of squares 102/36, variance (102/36)/5 = 0.5667, std 0.75277.
    assert a["mean"] == pytest.approx(25 / 6) and a["median"] == 4.0
    assert a["std"] == pytest.approx(math.sqrt(102 / 36 / 5))
    half = student_t.ppf(0.975, 5) * math.sqrt(102 / 36 / 5) / math.sqrt(6)
    assert (a["ci_t_low"], a["ci_t_high"]) == pytest.approx((25 / 6 - half, 25 / 6 + half))
    # B: 2,3,2,2,1,3 -> mean 13/6, median 2, same spread as A.
    assert b["mean"] == pytest.approx(13 / 6) and b["median"] == 2.0
    assert b["std"] == pytest.approx(a["std"])
    assert (a["n_ratings"], a["n_raters"], a["n_items"]) == (6, 3, 2)
    assert a["histogram"] == {"3": 1, "4": 3, "5": 2}
    assert a["ci_boot_low"] <= a["mean"] <= a["ci_boot_high"]
    # z-MOS: each rater's scores standardised by their own mean and sample std, then averaged.
    z_a = []
    for scores in HAND.values():
        x = np.array(scores, float)
        z_a += list((x[:2] - x.mean()) / x.std(ddof=1))
    assert a["z_mos"] == pytest.approx(np.mean(z_a))
    assert b["z_mos"] == pytest.approx(-np.mean(z_a))  # each rater's z-scores sum to 0, 2 A + 2 B each
    # Pairwise: item means A (4, 13/3) vs B (5/3, 8/3): both differences positive, n = 2 ->
    # exact Wilcoxon p = 2 / 2^2 = 0.5; a single pair, so Holm leaves it at 0.5.
    (pair,) = doc["pairwise"]
    assert pair["test"] == "wilcoxon_signed_rank_item_means"
    assert pair["mean_a"] == pytest.approx((4 + 13 / 3) / 2) and pair["mean_b"] == pytest.approx((5 / 3 + 8 / 3) / 2)
    assert pair["p"] == pytest.approx(0.5) and pair["p_holm"] == pytest.approx(0.5) and not pair["significant"]
    # Agreement: units are (item, system) stimuli with their three ratings.
    units = [[4, 3, 5], [5, 4, 4], [2, 2, 1], [3, 2, 3]]
    ag = doc["agreement"]["quality"]
    assert ag["krippendorff_alpha"] == pytest.approx(stats.krippendorff_alpha(units, level="interval"))
    assert ag["icc1"] == pytest.approx(stats.icc_oneway(units)["icc1"])
    assert ag["krippendorff_alpha"] > 0.5  # A is clearly better than B for every rater
    # Leaderboard rows under the mos-p808 protocol with bootstrap overridden -> derived hash.
    lb = {r["system"]: r for r in doc["leaderboard"]}
    assert lb["A"]["metric"] == "mos_quality" and lb["A"]["value"] == pytest.approx(25 / 6)
    assert lb["A"]["unit"] == "score" and lb["A"]["higher_is_better"] is True and lb["A"]["n"] == 6
    base = load_protocol("mos-p808")
    assert lb["A"]["protocol_hash"] != base.hash and lb["A"]["protocol"].startswith("mos-p808+")


def test_default_protocol_hash_and_leaderboard(tmp_path):
    doc = aggregate(write_csv(tmp_path / "r.csv", hand_rows("coherence")))
    assert doc["leaderboard"][0]["protocol"] == "mos-p808"
    assert doc["leaderboard"][0]["protocol_hash"] == load_protocol("mos-p808").hash
    paths = write_outputs(doc, tmp_path / "results" / "runs" / "mos.json")
    assert [p.name for p in paths] == ["mos.json", "mos_systems.csv", "mos_raters.csv", "mos_pairwise.csv"]
    rows = build_leaderboard(tmp_path / "results", shipped=False)
    got = {(r["system"], r["metric"]): (r["rank"], r["value"]) for r in rows}
    assert got == {("A", "mos_coherence"): (1, pytest.approx(25 / 6)), ("B", "mos_coherence"): (2, pytest.approx(13 / 6))}
    with open(paths[1]) as fh:
        systems = list(csv.DictReader(fh))
    assert float(systems[0]["mean"]) == pytest.approx(25 / 6)


def test_bootstrap_seeded(tmp_path):
    path = write_csv(tmp_path / "r.csv", hand_rows())
    a = aggregate(path, seed=3, n_boot=400)["systems"]
    b = aggregate(path, seed=3, n_boot=400)["systems"]
    c = aggregate(path, seed=4, n_boot=400)["systems"]
    key = lambda rows: [(r["ci_boot_low"], r["ci_boot_high"]) for r in rows]  # noqa: E731
    assert key(a) == key(b)
    assert key(a) != key(c)


def _rater(name, scores, *, system="sys", aspect="quality", start=0, **extra):
    return [{"rater": name, "item": f"i{start + k}", "system": system, "aspect": aspect, "score": s,
             "playback_complete": 1, **extra} for k, s in enumerate(scores)]


def test_screening_reasons(tmp_path):
    good = [2, 4, 3, 5, 4, 3, 4, 2, 3, 4]
    rows = []
    for k in range(6):  # six ordinary raters, each passing a trap asking for 2
        rows += _rater(f"ok{k}", good)
        rows.append({"rater": f"ok{k}", "item": "t1", "system": "trap", "aspect": "quality", "score": 2,
                     "is_trap": 1, "expected_score": 2})
    rows += _rater("trapfail", good)
    rows.append({"rater": "trapfail", "item": "t1", "system": "trap", "aspect": "quality", "score": 4,
                 "is_trap": 1, "expected_score": 2})
    rows += _rater("flat", [3] * 10)
    rows += _rater("goldfail", good)
    rows.append({"rater": "goldfail", "item": "g1", "system": "gold", "aspect": "quality", "score": 1, "expected_score": 4})
    rows += _rater("goldok", good)
    rows.append({"rater": "goldok", "item": "g1", "system": "gold", "aspect": "quality", "score": 3, "expected_score": 4})
    rows += _rater("refbad", [4, 3], system="gt", is_reference=1) + _rater("refbad", [1, 1, 4], system="gt",
                                                                             start=2, is_reference=1)
    rows += _rater("refbad", good)
    partial = _rater("partial", good)
    for r in partial[:3]:
        r["playback_complete"] = 0  # 3 of 10 > 20%: rater dropped
    rows += partial
    onepartial = _rater("onepartial", good)
    onepartial[0]["playback_complete"] = 0  # 1 of 10: only that rating dropped
    rows += onepartial
    df = read_ratings(write_csv(tmp_path / "r.csv", rows))
    kept, report = screen(df, load_protocol("mos-p808").section("screening"))
    why = {r["rater"]: r for r in report["raters"]}
    for k in range(6):
        assert why[f"ok{k}"]["kept"] and why[f"ok{k}"]["reasons"] == []
    assert why["goldok"]["kept"]  # off by 1: within the P.808 gold tolerance
    assert not why["trapfail"]["kept"] and why["trapfail"]["reasons"][0].startswith("trap: failed 1 of 1")
    assert not why["flat"]["kept"] and why["flat"]["reasons"] == ["flat: all 10 quality ratings are 3"]
    assert not why["goldfail"]["kept"] and why["goldfail"]["reasons"][0].startswith("gold: 1 of 1")
    assert not why["refbad"]["kept"] and why["refbad"]["reasons"][0].startswith("reference: hidden reference rated below 2 on 2 of 5")
    assert not why["partial"]["kept"] and why["partial"]["reasons"][0].startswith("playback: 3 of 10")
    assert why["onepartial"]["kept"] and why["onepartial"]["incomplete_dropped"] == 1
    assert set(kept["rater"]) == {f"ok{k}" for k in range(6)} | {"goldok", "onepartial"}
    assert len(kept) == 8 * 10 - 1  # checks (traps, gold) never counted; one incomplete rating dropped
    assert not kept["is_trap"].any() and kept["expected_score"].isna().all()
    s = report["summary"]
    assert (s["raters"], s["raters_kept"], s["ratings_dropped_incomplete"]) == (13, 8, 1)  # incomplete ratings of dropped raters are not counted twice


def test_screening_z_outliers(tmp_path):
    # 21 ratings of one condition: twenty 4s and one 1. mean = 81/21, sample std = sqrt(9/21) = 0.6547
    # (sum of squared deviations: 20 (4/21)^2 + (60/21)^2 = 9), z(1) = -(60/21) / 0.6547 = -4.36 <= -3.29.
    rows = []
    for k in range(7):
        scores = [4, 4, 4] if k else [1, 4, 4]
        rows += _rater(f"r{k}", scores, system="A")
        rows += _rater(f"r{k}", [2, 3, 5], system="B")  # keeps every rater from being flat
    df = read_ratings(write_csv(tmp_path / "r.csv", rows))
    kept, report = screen(df)
    why = {r["rater"]: r for r in report["raters"]}
    assert why["r0"]["outliers_dropped"] == 1 and why["r0"]["kept"]  # 1 of 6 ratings is <= 20%
    assert len(kept) == 41 and (kept.loc[kept["system"] == "A", "score"] == 4).all()
    # Two outliers out of 6 ratings (33% > 20%): the rater is dropped entirely. Condition A now has
    # forty 4s and two 1s: mean 162/42, SS = 2 (114/42)^2 + 40 (6/42)^2 = 17.14, std = sqrt(17.14/41)
    # = 0.6466, z(1) = -(114/42) / 0.6466 = -4.20.
    rows2 = _rater("r0", [1, 1, 4], system="A") + _rater("r0", [2, 3, 5], system="B")
    for k in range(1, 14):
        rows2 += _rater(f"r{k}", [4, 4, 4], system="A") + _rater(f"r{k}", [2, 3, 5], system="B")
    kept2, report2 = screen(read_ratings(write_csv(tmp_path / "r2.csv", rows2)))
    r0 = {r["rater"]: r for r in report2["raters"]}["r0"]
    assert r0["outliers_dropped"] == 2 and not r0["kept"]
    assert r0["reasons"] == ["outlier: 2 of 6 ratings with |z| >= 3.29 (> 20%)"]
    assert "r0" not in set(kept2["rater"]) and len(kept2) == 13 * 6


def test_flat_rater_needs_minimum_ratings(tmp_path):
    df = read_ratings(write_csv(tmp_path / "r.csv", _rater("a", [3, 3]) + _rater("b", [3, 4])))
    _, report = screen(df)
    assert all(r["kept"] for r in report["raters"])  # 2 ratings: too few to call flat


@pytest.mark.parametrize("body,message", [
    ("rater,item,system,aspect,score\nr1,i1,A,quality,4\nr1,i2,A,quality,7\n", "line 3: score 7 outside the 1..5 scale"),
    ("rater,item,system,aspect\nr1,i1,A,quality\n", "line 1: missing column(s) score"),
    ("rater,item,system,aspect,score\nr1,i1,A,quality,good\n", "line 2: score is not a number: 'good'"),
    ("rater,item,system,aspect,score\nr1,i1,A,quality,3.5\n", "line 2: score 3.5 is not a whole scale category"),
    ("rater,item,system,aspect,score\nr1,i1,A,quality,3\nr2,i1,A,quality,3\nr1,i1,A,quality,4\n",
     "line 4: duplicate rating of rater r1, item i1, system A, aspect quality (first on line 2)"),
    ("rater,item,system,aspect,score,is_trap\nr1,i1,A,quality,3,maybe\n", "line 2: is_trap must be 0/1"),
    ("rater,item,system,aspect,score,is_trap\nr1,t1,trap,quality,3,1\n", "line 2: trap item without expected_score"),
    ("rater,item,system,aspect,score\nr1,,A,quality,3\n", "line 2: empty item"),
    ("rater,item,system,aspect,score\nr1,i1,A,quality,3,9\n", "line 2: more fields than the header has"),
    ("rater,item,system,aspect,score\n", "no ratings in file"),
])
def test_bad_csv_named_in_error(tmp_path, cli, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(UserError, match=None) as exc:
        read_ratings(path)
    assert message in str(exc.value) and str(path) in str(exc.value)
    res = cli("mos", "aggregate", path, "--out-dir", tmp_path / "out")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and message in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_aggregate_writes_outputs(tmp_path, cli):
    path = write_csv(tmp_path / "r.csv", hand_rows())
    res = cli("mos", "aggregate", path, "--out-dir", tmp_path / "o", "--seed", 2, "--bootstrap", 200)
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "o" / "mos.json").read_text())
    assert doc["complete"] and doc["protocol"]["params"]["stats"]["bootstrap"] == 200
    assert {r["metric"] for r in doc["leaderboard"]} == {"mos_quality"}
    assert "raters kept 3/3" in res.stdout
    res = cli("mos", "aggregate", tmp_path / "nope.csv")
    assert res.returncode == 2 and "no such ratings file" in res.stderr


def test_bom_csv_reads_like_plain(tmp_path):
    """Spreadsheet exports (Excel "CSV UTF-8") start with a byte-order mark; the first column
    name must still be 'rater', not '\ufeffrater'."""
    plain = write_csv(tmp_path / "plain.csv", hand_rows())
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    a, b = read_ratings(plain), read_ratings(bom)
    assert list(b.columns) == list(a.columns) and b.equals(a)
    assert aggregate(bom, n_boot=50)["systems"][0]["mean"] == pytest.approx(25 / 6)


def test_comparable_key_names_the_listening_test(tmp_path):
    import hashlib

    rows = hand_rows()
    doc = aggregate(write_csv(tmp_path / "a.csv", rows), n_boot=50)
    keys = {r["comparable_key"] for r in doc["leaderboard"]}
    assert len(doc["leaderboard"]) == 2 and keys == {doc["input"]["comparable_key"]}
    (key,) = keys
    # The documented definition: SHA-256 over the sorted distinct (aspect, system, item, stimulus)
    # of the non-trap rows, one tab-separated line each ("" stimulus: the column is absent).
    design = "\n".join(f"quality\t{s}\t{i}\t" for s in ("A", "B") for i in ("i1", "i2"))
    assert key == "survey:" + hashlib.sha256(design.encode()).hexdigest()[:12]
    # Same test, other ratings: other scores, rows in another order, a trap answered -> same key.
    fields = FIELDS + ["stimulus"]
    more = [{**r, "score": 6 - r["score"]} for r in reversed(rows)] + [
        {"rater": "r1", "item": "t1", "system": "trap", "aspect": "quality", "score": 2, "is_trap": 1,
         "expected_score": 2, "playback_complete": 1}]
    assert aggregate(write_csv(tmp_path / "b.csv", more, fields), n_boot=50)["leaderboard"][0]["comparable_key"] == key
    # Another test: one more system, another segment, or the survey's other stimulus files.
    other = {
        "system": rows + [{**r, "system": "C"} for r in rows if r["system"] == "A"],
        "item": [{**r, "item": r["item"].replace("i2", "i3")} for r in rows],
        "stimulus": [{**r, "stimulus": f"q{r['system']}{r['item']}"} for r in rows],
    }
    got = {name: aggregate(write_csv(tmp_path / f"{name}.csv", rs, fields), n_boot=50)["leaderboard"][0]["comparable_key"]
           for name, rs in other.items()}
    assert all(re.fullmatch(r"survey:[0-9a-f]{12}", k) for k in [key, *got.values()])
    assert len({key, *got.values()}) == 4
    # On the leaderboard, two listening tests that share system A are ranked apart: A keeps a
    # row (and rank 1) in each; the later test does not replace the earlier one.
    runs = tmp_path / "results" / "runs"
    write_outputs(doc, runs / "first.json")
    write_outputs(aggregate(tmp_path / "system.csv", n_boot=50), runs / "second.json")
    board = [r for r in build_leaderboard(tmp_path / "results", shipped=False) if r["system"] == "A"]
    assert sorted((r["comparable_key"], r["rank"]) for r in board) == sorted([(key, 1), (got["system"], 1)])
