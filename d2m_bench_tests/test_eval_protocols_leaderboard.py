"""Protocols (listing, hashing, overrides) and the leaderboard."""
import csv
import json

import pytest

from d2m_bench.errors import UserError
from d2m_bench.results.leaderboard import build_leaderboard
from d2m_bench.protocol import available_protocols, load_protocol
from d2m_bench.synth.synthetic import click_track


def test_protocols_listed_with_descriptions(cli):
    proc = cli("protocols")
    assert proc.returncode == 0
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    for required in ("d2m-aistpp-2s", "loris", "tolerance"):
        assert required in names
    assert all(len(line.split(None, 2)) == 3 for line in proc.stdout.splitlines())


def test_paper_setting_parameters():
    p = load_protocol("d2m-aistpp-2s")
    assert p.get("audio.sample_rate") == 22050 and p.get("beats.variant") == "d2m"
    assert p.get("audio.expected_seconds") == 2.0
    onset = p.section("beats")["onset"]
    assert {k: onset[k] for k in ("wait", "delta", "pre_avg", "post_avg", "post_max", "pre_max", "hop_length")} == \
        {"wait": 1, "delta": 0.2, "pre_avg": 1, "post_avg": 1, "post_max": 1, "pre_max": 1, "hop_length": 512}
    assert load_protocol("loris").get("beats.variant") == "loris"
    assert load_protocol("tolerance").get("beats.window") == 0.07


def test_hash_is_stable_and_parameter_sensitive(tmp_path):
    p = load_protocol("d2m-aistpp-2s")
    text = open(p.source).read()
    copy = tmp_path / "renamed.toml"
    copy.write_text(text.replace('name = "d2m-aistpp-2s"', 'name = "my-copy"').replace("description =", "description = 'x' #"))
    assert load_protocol(copy).hash == p.hash  # name and description are not parameters
    changed = tmp_path / "changed.toml"
    changed.write_text(text.replace("delta = 0.2", "delta = 0.21"))
    assert load_protocol(changed).hash != p.hash
    hashes = [q.hash for q in available_protocols().values()]
    assert len(set(hashes)) == len(hashes)
    assert p.with_overrides({"beats.onset.delta": 0.2}) is p  # no-op override keeps the protocol
    assert p.with_overrides({"beats.onset.delta": 0.3}).hash != p.hash


def test_unknown_protocol():
    with pytest.raises(UserError, match="unknown protocol 'nope'"):
        load_protocol("nope")


def _results_dir(tmp_path):
    (tmp_path / "results" / "runs").mkdir(parents=True)
    rep = tmp_path / "results" / "reported"
    rep.mkdir()
    (rep / "paper.csv").write_text(
        "source,table,dataset,setting,system,metric,value,unit,protocol,citation\n"
        "p,1,aistpp,2s,A,beats_coverage,90.0,percent,d2m-aistpp-2s,cite\n"
        "p,1,aistpp,2s,B,beats_coverage,80.0,percent,d2m-aistpp-2s,cite\n"
        "p,3,aistpp,2s,A,beats_coverage,90.0,percent,d2m-aistpp-2s,cite\n"
        "p,1,aistpp,2s,A,genre_accuracy,25.0,percent,paper:genre,cite\n")
    return tmp_path / "results"


def test_leaderboard_ranks_only_within_a_protocol_hash(tmp_path, cli):
    import soundfile as sf

    results = _results_dir(tmp_path)
    for i, (g, p) in enumerate([([0.3, 1.3], [0.3, 1.3]), ([0.3, 1.3], [0.3])]):
        sf.write(str((tmp_path / "gt").mkdir(exist_ok=True) or tmp_path / "gt" / f"{i}.wav"), click_track(g), 22050)
        sf.write(str((tmp_path / "pred").mkdir(exist_ok=True) or tmp_path / "pred" / f"{i}.wav"), click_track(p), 22050)
    for proto in ("d2m-aistpp-2s", "loris"):
        proc = cli("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--protocol", proto,
                   "--system", "mine", "--out", results / "runs" / f"mine-{proto}.json", "-q")
        assert proc.returncode == 0, proc.stderr
    proc = cli("leaderboard", "--results", results, "--no-shipped")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(results / "leaderboard.csv")))
    d2m_hash = load_protocol("d2m-aistpp-2s").hash
    cov = [r for r in rows if r["metric"] == "beats_coverage"]
    # the reported rows name no gt set; the run's set is its own folder: two tables, each ranked alone
    # (duplicate reported A kept once); the run's table holds the five references, unranked
    assert [(r["system"], r["kind"], r["rank"], r["value"]) for r in cov[:3]] == [
        ("A", "reported", "1", "90.00"), ("B", "reported", "2", "80.00"), ("mine", "measured", "1", "75.00")]
    refs = {r["system"]: (r["rank"], r["role"], r["value"]) for r in cov[3:]}
    # both gt clips are the same click track: the shuffled gt is the gt; silence has no onset
    assert refs["floor: ground-truth"] == ("", "ceiling", "100.00") and refs["floor: silence"] == ("", "floor", "0.00")
    assert refs["floor: shuffled-gt"] == ("", "floor", "100.00") and len(refs) == 5
    assert {r["gt_set_key"] for r in cov[:2]} == {""} and cov[2]["gt_set_key"].startswith("gt:")
    assert all(r["protocol_hash"] == d2m_hash for r in cov)
    loris = [r for r in rows if r["protocol"] == "loris"]
    assert {r["metric"] for r in loris} == {"loris_coverage", "loris_hit", "loris_f1"}
    assert all(r["rank"] == "1" for r in loris if r["kind"] == "measured")  # alone under its hash
    genre = [r for r in rows if r["metric"] == "genre_accuracy"]
    assert genre[0]["protocol_hash"] == "paper:genre"
    md = (results / "leaderboard.md").read_text()
    assert f"## d2m-aistpp-2s (`{d2m_hash[:12]}`)" in md and "| mine | measured | 75.0%" in md


def test_leaderboard_refuses_incomplete_runs(tmp_path):
    results = _results_dir(tmp_path)
    (results / "runs" / "x.json").write_text(json.dumps({"leaderboard": []}))
    with pytest.raises(UserError, match="x.json: run file is not a complete result"):
        build_leaderboard(results, shipped=False, strict=True)
    notes = []  # not strict: skipped with a warning naming it
    assert [r for r in build_leaderboard(results, notes=notes, shipped=False) if r["kind"] == "measured"] == []
    assert any("x.json: skipped: run file is not a complete result" in n for n in notes)


def test_shipped_reported_numbers_match_the_reference_table():
    """results/reported is a transcription of the paper table in shared/reference."""
    from pathlib import Path

    ours = list(csv.DictReader(open(Path(__file__).parents[1] / "results/reported/d2m_gan_eccv2022.csv")))
    assert len(ours) == 116
    by_key = {(r["table"], r["dataset"], r["setting"], r["system"], r["metric"]): float(r["value"]) for r in ours}
    assert by_key[("1", "aistpp", "2s", "D2M-GAN low", "beats_coverage")] == 92.3
    assert by_key[("1", "aistpp", "2s", "D2M-GAN low", "genre_accuracy")] == 26.7
    assert by_key[("2", "tiktok", "2s", "D2M-GAN high", "beats_hit")] == 82.3
    assert by_key[("1", "aistpp", "2s", "Ground truth", "mos_quality")] == 4.8
