"""Issue 21: a leaderboard whose rows are comparable by construction.

The gt set is part of a result's identity, floors sit in every table with measured rows,
warnings travel to the row, and directions are honest. The scenario of the issue is rebuilt
on an 8-clip demo set: a constant click track, a pairing rotated by one clip and the demo
itself, none of which may sit in the paper's table.
"""
import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import d2m_bench
from d2m_bench.data import list_stems
from d2m_bench.io.audio import write_audio
from d2m_bench.protocol import load_protocol
from d2m_bench.results import directions
from d2m_bench.results.flags import pairing_test, run_flags
from d2m_bench.results.gtset import fingerprint, segment_list_sha256
from d2m_bench.results.leaderboard import BELOW_FLOOR, OVER_GENERATION, build_leaderboard, to_markdown
from d2m_bench.synth.demo import make_demo
from d2m_bench.synth.synthetic import click_track

REPO = Path(__file__).parents[1]
ONLY_BEATS = {"genre.enabled": False, "alignment.enabled": False}


# --- the fingerprint --------------------------------------------------------------------------

def test_fingerprint_is_sorted_ids_with_file_hashes(tmp_path):
    (tmp_path / "b.wav").write_bytes(b"second")
    (tmp_path / "a.wav").write_bytes(b"first")
    fp = fingerprint([{"id": "b", "gt": tmp_path / "b.wav"}, {"id": "a", "gt": tmp_path / "a.wav"}])
    sha = {k: hashlib.sha256(v).hexdigest() for k, v in (("a", b"first"), ("b", b"second"))}
    # written out by hand from the definition: one "id<TAB>sha256" line per clip, ids sorted
    assert fp["sha256"] == hashlib.sha256(f"a\t{sha['a']}\nb\t{sha['b']}\n".encode()).hexdigest()
    assert fp["ids_sha256"] == hashlib.sha256(b"a\nb\n").hexdigest() and fp["n"] == 2
    assert fp["clips"] == [["a", sha["a"], "a.wav"], ["b", sha["b"], "b.wav"]] and fp["root"] == str(tmp_path)
    (tmp_path / "a.wav").write_bytes(b"changed")
    assert fingerprint([{"id": "a", "gt": tmp_path / "a.wav"}, {"id": "b", "gt": tmp_path / "b.wav"}])["sha256"] \
        != fp["sha256"]


def test_reported_rows_name_the_shipped_segment_list():
    ids = list_stems("aist_audio_test_segment.txt")
    assert len(ids) == 86
    expected = hashlib.sha256("".join(f"{i}\n" for i in sorted(ids)).encode()).hexdigest()
    rows = list(csv.DictReader(open(REPO / "results/reported/d2m_gan_eccv2022.csv")))
    aist2 = [r for r in rows if r["dataset"] == "aistpp" and r["setting"] == "2s"]
    assert {(r["gt_set"], r["segment_list_sha256"]) for r in aist2} == {
        ("AIST++ D2M-GAN test list, 86 segments", expected)}
    tiktok = {r["segment_list_sha256"] for r in rows if r["dataset"] == "tiktok"}
    assert tiktok == {segment_list_sha256(list_stems("tiktok_audio_test_segment.txt"))}


def test_dataset_build_records_its_segment_lists(tmp_path):
    from d2m_bench.data.dataset import Dataset, DatasetInfo, Segment, write_manifest

    segs = [Segment("x1", "test", "x"), Segment("x2", "test", "x"), Segment("y1", "train", "y")]
    write_manifest(tmp_path, segs, DatasetInfo(name="mine"))
    ds = Dataset(tmp_path)
    assert ds.info.builder["segment_lists"] == {"test": hashlib.sha256(b"x1\nx2\n").hexdigest(),
                                                "train": hashlib.sha256(b"y1\n").hexdigest()}
    from d2m_bench.results.gtset import dataset_identity

    assert dataset_identity(tmp_path, "test") == {"name": "mine", "split": "test", "n_segments": 2,
                                                  "segment_list_sha256": hashlib.sha256(b"x1\nx2\n").hexdigest()}


# --- the shifted-pairing test on matrices whose answer is known ---------------------------------

def test_pairing_test_on_constructed_matrices():
    rng = np.random.default_rng(1)
    n = 10
    good = rng.uniform(0.0, 0.3, (n, n)) + 0.7 * np.eye(n)  # each prediction matches its own gt
    assert pairing_test(good)["shifted"] is False
    rotated = np.roll(good, 1, axis=1)  # prediction i scored beside gt i, but it is gt i+1's
    got = pairing_test(rotated)
    assert got["shifted"] is True and got["best_shift"] == 1 and got["p_shift"] < 0.01
    deranged = good[:, rng.permutation(n)]
    assert pairing_test(deranged)["shifted"] is True  # any permutation, not only shifts
    same = np.tile(rng.uniform(0, 1, n), (n, 1))  # one output for every input: rows alike
    assert pairing_test(same)["shifted"] is False
    assert pairing_test(rng.uniform(0, 1, (n, n)))["shifted"] is False  # no pairing structure at all


def test_pairing_check_on_many_clips_is_fast_and_keeps_shifts():
    import time

    from d2m_bench.results.flags import pairing_check

    rng = np.random.default_rng(2)
    gt = [np.sort(rng.uniform(0, 2, 5)).tolist() for _ in range(700)]
    rows = lambda pred: [{"id": f"c{i:03d}", "gt_events": g, "pred_events": p}  # noqa: E731
                         for i, (g, p) in enumerate(zip(gt, pred))]
    start = time.perf_counter()
    good = pairing_check(rows([[t + 0.01 for t in g] for g in gt]))
    rotated = pairing_check(rows([[t + 0.01 for t in gt[(i + 3) % 700]] for i in range(700)]))
    assert time.perf_counter() - start < 5.0  # a block of 300 clips, vectorised
    assert good["summary"]["shifted"] is False and good["summary"]["n"] == 300
    assert rotated["summary"]["shifted"] is True and rotated["summary"]["best_shift"] == 3


# --- the scenario ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """An 8-clip demo set, runs of the demo, a constant click track and a rotated pairing."""
    root = tmp_path_factory.mktemp("sets")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("D2M_BENCH_CACHE", str(root / "cache"))
        demo = make_demo(root / "demo", n=8)
        ids = sorted(p.stem for p in (demo / "gt").glob("*.wav"))
        write_audio(root / "click.wav", click_track(np.arange(0.0, 2.0, 0.25), duration=2.0), 22050)
        results = root / "results"
        (results / "runs").mkdir(parents=True)

        def manifest(name, pred):
            path = root / f"{name}.csv"
            path.write_text("id,gt,pred\n" + "".join(f"{c},{demo / 'gt' / c}.wav,{pred(i, c)}\n"
                                                     for i, c in enumerate(ids)))
            return path

        runs = {"demo": dict(pred=demo / "generated", gt=demo / "gt"),
                "const-click": dict(manifest=manifest("click", lambda i, c: root / "click.wav")),
                "rotated": dict(manifest=manifest("rot", lambda i, c: demo / "generated" / f"{ids[(i + 1) % 8]}.wav"))}
        docs = {}
        for name, kw in runs.items():
            res = d2m_bench.evaluate(**kw, workers=1, system=name)
            res.write_json(results / "runs" / f"{name}.json")
            docs[name] = res.to_dict()
        notes = []
        rows = build_leaderboard(results, notes, floors=True)
        yield {"root": root, "results": results, "docs": docs, "rows": rows, "notes": notes, "ids": ids}


def test_trivial_and_broken_runs_never_sit_in_the_paper_table(scenario):
    rows = scenario["rows"]
    paper = [r for r in rows if r["gt_set"] == "AIST++ D2M-GAN test list, 86 segments"
             and r["metric"] == "beats_coverage" and r["protocol"] == "d2m-aistpp-2s"]
    assert {r["kind"] for r in paper} == {"reported"} and len(paper) == 25
    mine = [r for r in rows if r["metric"] == "beats_coverage" and r["gt_set_key"].startswith("gt:")]
    assert {r["system"] for r in mine if r["kind"] == "measured"} == {"demo", "const-click", "rotated"}
    assert len({r["gt_set_key"] for r in mine}) == 1  # one set: the 8 demo gt files
    assert "demo/gt: 8 clips" in mine[0]["gt_set"]
    md = to_markdown(rows)
    assert f"## d2m-aistpp-2s (`{load_protocol('d2m-aistpp-2s').short_hash}`) · folder " in md


def test_every_table_with_measured_rows_shows_the_five_floors(scenario):
    table = [r for r in scenario["rows"] if r["gt_set_key"].startswith("gt:")]
    for metric in ("beats_coverage", "beats_hit"):
        refs = {r["system"]: r for r in table if r["metric"] == metric and r["kind"] == "reference"}
        assert set(refs) == {"floor: ground-truth", "floor: shuffled-gt", "floor: metronome", "floor: white-noise",
                             "floor: silence"}
        assert all(r["rank"] == "" for r in refs.values())  # shown, never ranked
        assert refs["floor: ground-truth"]["value"] == 100.0 and refs["floor: ground-truth"]["role"] == "ceiling"
        assert refs["floor: silence"]["value"] == 0.0  # every demo gt has onsets; silence has none
    # the constant click track does not beat the metronome floor: marked in its cells
    click = {r["metric"]: r for r in table if r["system"] == "const-click"}
    assert BELOW_FLOOR in click["beats_hit"]["marks"] and OVER_GENERATION in click["beats_coverage"]["marks"]
    assert click["beats_coverage"]["value"] == 125.0  # 2 bins of 2 in every clip, the gt fills 1.6 on average


def test_flags_reach_the_row(scenario):
    flags = {r["system"]: r["flags"] for r in scenario["rows"] if r["metric"] == "beats_hit" and r["kind"] == "measured"
             and r["gt_set_key"].startswith("gt:")}
    assert "pairing looks shifted" in flags["rotated"] and "pairing looks shifted" not in flags["demo"]
    assert "identical predictions" in flags["const-click"]
    docs = scenario["docs"]
    assert docs["rotated"]["sections"]["pairing"]["summary"]["best_shift"] == 1
    assert any(w.startswith("pairing looks shifted") for w in docs["rotated"]["warnings"])
    md = to_markdown(scenario["rows"])
    assert any(line.startswith("| rotated | measured |") and line.rstrip().endswith("pairing looks shifted |")
               for line in md.splitlines())
    from d2m_bench.results.leaderboard import to_csv

    table = [r for r in csv.DictReader(to_csv(scenario["rows"]).splitlines()) if r["system"] == "rotated"]
    assert {r["flags"] for r in table} == {"pairing looks shifted"} and all(r["gt_set"] for r in table)
    assert all(r["gt_set_key"].startswith("gt:") and r["direction"] == "higher" for r in table)
    from d2m_bench.report.leaderboard_html import to_html

    page = to_html(scenario["rows"])
    assert 'title="pairing looks shifted">⚑ pairing looks shifted</td>' in page


def test_floors_are_cached_and_unreachable_gt_gives_one_line(scenario, monkeypatch, tmp_path):
    monkeypatch.setenv("D2M_BENCH_CACHE", str(scenario["root"] / "cache"))
    import d2m_bench.evaluation

    def refuse(*a, **k):
        raise AssertionError("floors recomputed despite the cache")

    monkeypatch.setattr(d2m_bench.evaluation, "evaluate", refuse)
    again = build_leaderboard(scenario["results"], [], floors=True)
    assert sum(r["kind"] == "reference" for r in again) == sum(r["kind"] == "reference" for r in scenario["rows"])
    # the same run file, its gt folder gone: no floors, one line saying how to add them
    doc = json.loads((scenario["results"] / "runs" / "demo.json").read_text())
    doc["inputs"]["gt_set"]["root"] = str(tmp_path / "gone")
    doc["inputs"]["gt_set"]["sha256"] = "0" * 64
    (tmp_path / "res" / "runs").mkdir(parents=True)
    (tmp_path / "res" / "runs" / "moved.json").write_text(json.dumps(doc))
    notes = []
    rows = build_leaderboard(tmp_path / "res", notes, shipped=False, floors=True)
    assert [r for r in rows if r["kind"] == "reference"] == []
    assert len(notes) == 1 and "no floors (gt file not found" in notes[0] and "d2m-bench leaderboard" in notes[0]
    notes = []
    build_leaderboard(tmp_path / "res", notes, shipped=False)
    assert len(notes) == 1 and "--floors" in notes[0]


def test_a_run_on_the_paper_list_sits_in_the_paper_table(tmp_path):
    """Ids hashing to the shipped 86-segment list: ranked with the paper's rows."""
    h = load_protocol("d2m-aistpp-2s").hash
    ids = list_stems("aist_audio_test_segment.txt")
    doc = {"complete": True, "created": "2026-01-01T00:00:00+00:00", "system": "mine",
           "inputs": {"gt_set": {"sha256": "ab" * 32, "ids_sha256": segment_list_sha256(ids), "n": 86}},
           "leaderboard": [{"system": "mine", "protocol": "d2m-aistpp-2s", "protocol_hash": h, "metric": "beats_hit",
                            "value": 0.915, "unit": "fraction", "higher_is_better": True, "n": 86}]}
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mine.json").write_text(json.dumps(doc))
    rows = [r for r in build_leaderboard(tmp_path, []) if r["metric"] == "beats_hit" and r["protocol_hash"] == h
            and r["gt_set"] == "AIST++ D2M-GAN test list, 86 segments"]
    ranked = [(r["system"], r["rank"]) for r in rows]
    assert ranked[:3] == [("D2M-GAN low", 1), ("mine", 2), ("D2M-GAN low w/o fine-tune", 3)]  # 91.7, 91.5, 91.2


def test_old_results_load_and_are_shown_apart_with_one_warning(scenario, tmp_path):
    (tmp_path / "runs").mkdir()
    for name in ("a", "b"):
        doc = json.loads((scenario["results"] / "runs" / "demo.json").read_text())
        for key in ("flags",):
            doc.pop(key)
        doc["inputs"].pop("gt_set")
        doc["sections"].pop("pairing", None)
        doc["system"] = name
        for r in doc["leaderboard"]:
            r["system"] = name
        (tmp_path / "runs" / f"{name}.json").write_text(json.dumps(doc))
    notes = []
    rows = build_leaderboard(tmp_path, notes, floors=True)
    old = [r for r in rows if r["kind"] == "measured"]
    assert {r["system"] for r in old} == {"a", "b"} and {r["gt_set_key"] for r in old} == {""}
    assert len([n for n in notes if "made before gt sets were recorded" in n]) == 1
    assert not any(r["kind"] == "reference" for r in rows)  # an unidentified set gets no floors
    assert run_flags(json.loads((tmp_path / "runs" / "a.json").read_text())) == []


# --- directions --------------------------------------------------------------------------------

def test_a_declared_direction_ranks_and_leaves_shipped_hashes_alone(tmp_path):
    base = load_protocol("d2m-aistpp-2s")
    assert "ranking" not in base.params  # absent by default: the shipped hashes are unchanged
    closer = base.with_overrides({"ranking.beats_coverage": "closer_to:1"}).validate_eval()
    assert closer.hash != base.hash
    with pytest.raises(d2m_bench.errors.UserError, match="ranking.beats_coverage"):
        base.with_overrides({"ranking.beats_coverage": "sideways"}).validate_eval()
    assert directions.sort_key(125.0, "closer_to:100") == 25.0 and directions.better(95.0, 110.0, "closer_to:100")
    runs = tmp_path / "runs"
    runs.mkdir()
    for name, value in (("over", 1.25), ("under", 0.95)):
        row = {"system": name, "protocol": closer.name, "protocol_hash": closer.hash, "metric": "beats_coverage",
               "value": value, "unit": "ratio", "higher_is_better": True, "n": 4, "direction": "closer_to:1"}
        (runs / f"{name}.json").write_text(json.dumps({"complete": True, "system": name, "leaderboard": [row]}))
    rows = build_leaderboard(tmp_path, [], shipped=False)
    assert [(r["system"], r["rank"], r["direction"]) for r in rows] == [("under", 1, "closer_to:100"),
                                                                          ("over", 2, "closer_to:100")]
    assert OVER_GENERATION in rows[1]["marks"] and rows[0]["marks"] == ""
