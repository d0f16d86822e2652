"""What a paper author reads in a result (issue 12, item 6): coverage is a ratio (it can exceed
1) that papers print x100, std at n = 1 is explained, distributions hold numbers, and each
row gives the prediction's length before any length policy."""
import json

import pytest
import soundfile as sf

from d2m_bench.evaluation import evaluate
from d2m_bench.results.leaderboard import build_leaderboard
from d2m_bench.synth.synthetic import click_track

SR = 22050
ONLY_BEATS = {"genre.enabled": False, "alignment.enabled": False}


def write(path, y):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, SR)


def test_coverage_is_a_ratio_shown_x100(tmp_path):
    # gt: one occupied bin of 2; pred: both -> coverage 2 (B_g / B_t), hit 1
    write(tmp_path / "gt" / "a.wav", click_track([0.4]))
    write(tmp_path / "pred" / "a.wav", click_track([0.3, 1.3]))
    write(tmp_path / "gt" / "b.wav", click_track([0.4, 1.4]))
    write(tmp_path / "pred" / "b.wav", click_track([0.4]))
    res = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1, system="mine", overrides=ONLY_BEATS)
    cov, hit = res.aggregate["beats_coverage"], res.aggregate["beats_hit"]
    assert cov["unit"] == "ratio" and cov["max"] == 2.0 and cov["value"] == pytest.approx(1.25)
    assert "x100" in cov["definition"] and "ratio" in cov["definition"]
    assert hit["unit"] == "fraction" and hit["value"] == pytest.approx(0.75)
    (tmp_path / "results" / "runs").mkdir(parents=True)
    res.write_json(tmp_path / "results" / "runs" / "mine.json")
    rows = {r["metric"]: r for r in build_leaderboard(tmp_path / "results", shipped=False) if r["kind"] == "measured"}
    # papers print coverage as a percentage: 1.25 -> 125 %, comparable with reported rows
    assert rows["beats_coverage"]["unit"] == "percent" and rows["beats_coverage"]["value"] == pytest.approx(125.0)
    assert rows["beats_hit"]["unit"] == "percent" and rows["beats_hit"]["value"] == pytest.approx(75.0)
    assert "125.0%" in res.table()


def test_std_at_one_clip_and_numeric_distribution(tmp_path):
    write(tmp_path / "gt" / "a.wav", click_track([0.4, 1.4, 2.4], duration=3.0))
    write(tmp_path / "pred" / "a.wav", click_track([0.4], duration=3.0))
    res = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1, overrides=ONLY_BEATS)
    cov = res.aggregate["beats_coverage"]
    assert cov["n"] == 1 and cov["std"] is None and "undefined for one clip" in cov["std_note"]
    assert cov["std_population"] == 0.0
    # the exact per-clip number 1/3, not a rounded string key
    assert cov["distribution"] == [{"value": 1 / 3, "count": 1}]
    doc = json.loads(json.dumps(res.to_dict(), default=str))
    assert doc["aggregate"]["beats_coverage"]["distribution"][0]["value"] == 1 / 3
    row = res.per_clip[0]
    assert row["pred_loaded_samples"] == row["gt_loaded_samples"] == 3 * SR


def test_std_defined_from_two_clips(tmp_path):
    for cid, pred in (("a", [0.4]), ("b", [0.4, 1.4])):
        write(tmp_path / "gt" / f"{cid}.wav", click_track([0.4, 1.4]))
        write(tmp_path / "pred" / f"{cid}.wav", click_track(pred))
    cov = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1, overrides=ONLY_BEATS).aggregate["beats_coverage"]
    # values 0.5 and 1.0: sample std sqrt(((.25)^2 * 2) / 1)
    assert cov["std"] == pytest.approx(0.3535533905932738) and "std_note" not in cov
    assert cov["distribution"] == [{"value": 0.5, "count": 1}, {"value": 1.0, "count": 1}]
