"""Leaderboard comparability: comparable_key, pinned reported hashes, skipped runs, provenance."""
import csv
import json
import shutil
from pathlib import Path

import pytest

from d2m_bench.errors import UserError
from d2m_bench.results.leaderboard import build_leaderboard, to_markdown, write_leaderboard
from d2m_bench.protocol import Protocol, available_protocols, load_protocol
from d2m_bench.io.provenance import provenance_label, read_pred_provenance
from d2m_bench.results.result import EvalResult, embedder_key

REPO = Path(__file__).parents[1]
OFFICIAL = "10086976245803799d9194e9a73d9b6c1549c71d1b80106f5cade5608a561f4b"  # published VGGish weights
RANDOM = "deadbeef0123" + "cd" * 26
HEADER = "source,table,dataset,setting,system,metric,value,unit,protocol,protocol_hash,comparable_key,citation\n"


def _run(path, rows, *, created="2026-01-01T00:00:00+00:00", inputs=None, system="x"):
    doc = {"complete": True, "created": created, "system": system, "inputs": inputs or {}, "leaderboard": rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def _row(system, metric, value, *, h="h1", key=None, unit="fraction", hib=True):
    r = {"system": system, "protocol": "p", "protocol_hash": h, "metric": metric, "value": value,
         "unit": unit, "higher_is_better": hib, "n": 4}
    if key is not None:
        r["comparable_key"] = key
    return r


# --- comparable_key ---------------------------------------------------------------------------

def test_embedder_key_from_weights_hash():
    assert embedder_key({"embedder": "mfcc-chroma", "weights_sha256": None}) == ""
    assert embedder_key({"embedder": "vggish", "weights_sha256": OFFICIAL}) == "vggish:official"
    assert embedder_key({"embedder": "vggish", "weights_sha256": RANDOM}) == "vggish:deadbeef0123"
    assert embedder_key({"embedder": "vggish", "weights_sha256": OFFICIAL,
                         "pca_sha256": "970ea276" + "0" * 56}) == "vggish:official:pca-970ea2760000"  # no full hash pinned
    assert embedder_key({"embedder": "vggish", "weights_sha256": OFFICIAL,
                         "pca_sha256": "abcdef123456" + "0" * 52}) == "vggish:official:pca-abcdef123456"


def _result(meta):
    proto = Protocol("t", "", {"genre": {"enabled": True}})
    m = {"value": 0.5, "n": 2, "unit": "fraction", "higher_is_better": True}
    fad = {"value": 3.0, "n": 2, "unit": "score", "higher_is_better": False}
    return EvalResult(protocol=proto, system="s", pairing_rule="stem", inputs={},
                      aggregate={"beats_coverage": m, "genre_accuracy": m, "fad_vggish": fad},
                      excluded=[], per_clip=[],
                      sections={"genre": {"status": "ok", "meta": meta,
                                          "aggregate": {"genre_accuracy": m, "fad_vggish": fad}}})


def test_result_rows_carry_the_embedder_key_on_genre_metrics_only():
    rows = {r["metric"]: r["comparable_key"] for r in _result({"embedder": "vggish", "weights_sha256": RANDOM})
            .to_dict()["leaderboard"]}
    assert rows == {"beats_coverage": "", "genre_accuracy": "vggish:deadbeef0123", "fad_vggish": "vggish:deadbeef0123"}
    rows = {r["metric"]: r["comparable_key"] for r in _result({"embedder": "mfcc-chroma", "weights_sha256": None})
            .leaderboard_rows()}
    assert set(rows.values()) == {""}


def test_rows_with_different_comparable_keys_are_never_ranked_together(tmp_path):
    runs = tmp_path / "results" / "runs"
    # same protocol hash and metric; official vs random weights, and two listening tests
    _run(runs / "a.json", [_row("A", "genre_accuracy", 0.30, key="vggish:official"),
                           _row("A", "mos_quality", 3.0, unit="score", key="survey:111")])
    _run(runs / "b.json", [_row("B", "genre_accuracy", 0.90, key="vggish:deadbeef0123"),
                           _row("B", "mos_quality", 4.0, unit="score", key="survey:222")])
    _run(runs / "c.json", [_row("C", "genre_accuracy", 0.20, key="vggish:official"),
                           _row("C", "mos_quality", 2.0, unit="score", key="survey:111")])
    # same system, other weights: kept beside (not replacing) its official-weights row
    _run(runs / "a2.json", [_row("A", "genre_accuracy", 0.99, key="vggish:deadbeef0123")],
         created="2026-02-01T00:00:00+00:00")
    rows = write_leaderboard(tmp_path / "results", notes=[], shipped=False)
    got = {(r["system"], r["metric"], r["comparable_key"]): r["rank"] for r in rows}
    assert got == {("A", "genre_accuracy", "vggish:official"): 1, ("C", "genre_accuracy", "vggish:official"): 2,
                   ("A", "genre_accuracy", "vggish:deadbeef0123"): 1, ("B", "genre_accuracy", "vggish:deadbeef0123"): 2,
                   ("A", "mos_quality", "survey:111"): 1, ("C", "mos_quality", "survey:111"): 2,
                   ("B", "mos_quality", "survey:222"): 1}
    table = list(csv.DictReader(open(tmp_path / "results" / "leaderboard.csv")))
    assert {r["comparable_key"] for r in table} == {"vggish:official", "vggish:deadbeef0123", "survey:111", "survey:222"}
    md = (tmp_path / "results" / "leaderboard.md").read_text()
    assert "## p (`h1`) · `vggish:official`" in md and "## p (`h1`) · `survey:222`" in md


def test_rows_without_a_key_keep_their_old_grouping(tmp_path):
    runs = tmp_path / "results" / "runs"
    _run(runs / "a.json", [_row("A", "beats_hit", 0.5)])
    _run(runs / "b.json", [_row("B", "beats_hit", 0.7, key="")])
    rows = build_leaderboard(tmp_path / "results", notes=[], shipped=False)
    assert [(r["system"], r["rank"], r["comparable_key"]) for r in rows] == [("B", 1, ""), ("A", 2, "")]
    headings = [line for line in to_markdown(rows).splitlines() if line.startswith("## ")]
    assert headings == ["## p (`h1`)"]


def test_non_string_comparable_key_is_an_error(tmp_path):
    _run(tmp_path / "results" / "runs" / "bad.json", [_row("A", "beats_hit", 0.5, key=7)])
    with pytest.raises(UserError, match="bad.json: comparable_key of A / beats_hit is not a string"):
        build_leaderboard(tmp_path / "results", notes=[], shipped=False, strict=True)
    notes = []  # not strict: the row is skipped and named
    assert build_leaderboard(tmp_path / "results", notes=notes, shipped=False) == []
    assert any("bad.json: skipped: comparable_key of A / beats_hit is not a string" in n for n in notes)


# --- reported rows keep the hash they were transcribed under ----------------------------------

@pytest.fixture
def protocols_copy(tmp_path, monkeypatch):
    folder = tmp_path / "protocols"
    shutil.copytree(REPO / "protocols", folder)
    monkeypatch.setenv("D2M_BENCH_PROTOCOLS", str(folder))
    return folder


def _reported(results, text):
    (results / "reported").mkdir(parents=True, exist_ok=True)
    (results / "reported" / "paper.csv").write_text(HEADER + text)


def test_reported_rows_keep_the_pinned_hash_after_a_protocol_edit(tmp_path, protocols_copy):
    results = tmp_path / "results"
    old = load_protocol("d2m-aistpp-2s").hash
    _reported(results, f"p,1,aistpp,2s,Paper,beats_coverage,90.0,percent,d2m-aistpp-2s,{old},,cite\n"
                       f"p,1,aistpp,2s,Paper,beats_hit,80.0,percent,d2m-aistpp-2s,{old},,cite\n")
    _run(results / "runs" / "old.json", [_row("Mine", "beats_coverage", 0.95, h=old) | {"protocol": "d2m-aistpp-2s"}])
    notes = []
    rows = build_leaderboard(results, notes=notes, shipped=False)
    assert notes == []
    assert [(r["system"], r["rank"]) for r in rows if r["metric"] == "beats_coverage"] == [("Mine", 1), ("Paper", 2)]

    toml = protocols_copy / "d2m-aistpp-2s.toml"
    toml.write_text(toml.read_text().replace("delta = 0.2", "delta = 0.3"))
    new = load_protocol("d2m-aistpp-2s").hash
    assert new != old
    (results / "runs" / "old.json").unlink()
    _run(results / "runs" / "new.json", [_row("Mine", "beats_coverage", 0.5, h=new) | {"protocol": "d2m-aistpp-2s"}])
    notes = []
    rows = build_leaderboard(results, notes=notes, shipped=False)
    cov = {(r["system"], r["protocol_hash"]): r["rank"] for r in rows if r["metric"] == "beats_coverage"}
    assert cov == {("Paper", old): 1, ("Mine", new): 1}  # not ranked together
    assert len(notes) == 1  # once, although two rows name that protocol
    assert "protocol 'd2m-aistpp-2s' has changed" in notes[0] and old[:12] in notes[0] and new[:12] in notes[0]


def test_unpinned_reported_rows_take_the_current_hash_with_a_warning(tmp_path):
    results = tmp_path / "results"
    (results / "reported").mkdir(parents=True)
    (results / "reported" / "old.csv").write_text(
        "source,table,dataset,setting,system,metric,value,unit,protocol,citation\n"
        "p,1,aistpp,2s,Paper,beats_hit,80.0,percent,d2m-aistpp-2s,cite\n"
        "p,1,aistpp,2s,Paper,genre_accuracy,20.0,percent,paper:x,cite\n")
    notes = []
    rows = build_leaderboard(results, notes=notes, shipped=False)
    assert {r["metric"]: r["protocol_hash"] for r in rows} == {
        "beats_hit": load_protocol("d2m-aistpp-2s").hash, "genre_accuracy": "paper:x"}
    assert len(notes) == 1 and "no protocol_hash for 'd2m-aistpp-2s'" in notes[0]


def test_shipped_reported_rows_are_pinned_to_the_current_protocols():
    """Fails when a protocol file changes: re-pin results/reported deliberately (or not)."""
    protocols = available_protocols()
    rows = list(csv.DictReader(open(REPO / "results/reported/d2m_gan_eccv2022.csv")))
    for r in rows:
        if r["protocol"].startswith("paper:"):
            assert r["protocol_hash"] == ""
        else:
            assert r["protocol_hash"] == protocols[r["protocol"]].hash, r
    genre = {r["comparable_key"] for r in rows if r["metric"] == "genre_accuracy"}
    assert genre == {"vggish:official:relu"}  # the layer the genre protocols use (genre.layer)


def test_shipped_genre_rows_of_each_clip_length_are_all_kept(tmp_path):
    """The 3-s and 4-s genre numbers of table 3 are not merged into (and dropped as duplicates of) 2-s."""
    results = tmp_path / "results"
    shutil.copytree(REPO / "results/reported", results / "reported")
    rows = build_leaderboard(results, notes=[], shipped=False)
    high = {r["protocol"]: r["value"] for r in rows if r["system"] == "D2M-GAN high" and r["metric"] == "genre_accuracy"}
    assert high == {"paper:d2m-gan-genre-aistpp-2s": 24.4, "paper:d2m-gan-genre-aistpp-3s": 25.6,
                    "paper:d2m-gan-genre-aistpp-4s": 23.3}
    assert ("## paper:d2m-gan-genre-aistpp-3s · `vggish:official:relu` · "
            "AIST++ D2M-GAN test set, 3-s segments (list not published)") in to_markdown(rows).splitlines()


# --- runs without leaderboard rows ------------------------------------------------------------

def test_runs_without_a_system_are_named_not_silently_skipped(tmp_path, cli):
    runs = tmp_path / "results" / "runs"
    _run(runs / "plain.json", [], system=None)
    _run(runs / "ranked.json", [_row("A", "beats_hit", 0.5)])
    notes = []
    rows = build_leaderboard(tmp_path / "results", notes=notes, shipped=False)
    assert [r["system"] for r in rows] == ["A"]
    assert len(notes) == 1 and "skipped 1 run file(s)" in notes[0] and "plain.json" in notes[0]
    assert "ranked.json" not in notes[0]
    proc = cli("leaderboard", "--results", tmp_path / "results")
    assert proc.returncode == 0 and "warning:" in proc.stderr and "plain.json" in proc.stderr


# --- provenance of the predicted audio --------------------------------------------------------

PROVENANCE = {"baseline": "dance2music", "version": "2", "kind": "reimplementation",
              "upstream": "github.com/x/y@abc123", "seed": 0, "created": "2026-01-01T00:00:00+00:00",
              "dataset": {"path": "/d", "name": "synthetic", "split": "test", "sample_rate": 22050, "segments": 3},
              "synth": {"synth": "fluidsynth", "synth_version": "2.3.4", "soundfont": "/sf/GM.sf2",
                        "soundfont_sha256": "0123456789abcdef" * 4, "gain": 0.2},
              "segments": {"a": {"samples": 44100}}}


def test_read_pred_provenance(tmp_path):
    assert read_pred_provenance(tmp_path) is None
    (tmp_path / "provenance.json").write_text(json.dumps(PROVENANCE))
    prov = read_pred_provenance(tmp_path)
    assert prov["baseline"] == "dance2music" and prov["version"] == "2" and prov["upstream"] == "github.com/x/y@abc123"
    assert prov["synth"] == {"synth": "fluidsynth", "synth_version": "2.3.4", "soundfont": "/sf/GM.sf2",
                             "soundfont_sha256": "0123456789abcdef" * 4}
    assert prov["dataset"] == {"name": "synthetic", "split": "test", "sample_rate": 22050}
    assert "segments" not in prov  # per-clip details stay in the provenance file
    assert provenance_label(prov) == "dance2music v2 @github.com/x/y@abc123 sf:0123456789ab"
    (tmp_path / "provenance.json").write_text("{truncated")
    with pytest.raises(UserError, match="provenance.json: unreadable provenance file"):
        read_pred_provenance(tmp_path)


def test_leaderboard_shows_the_provenance_of_a_run(tmp_path):
    runs = tmp_path / "results" / "runs"
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "provenance.json").write_text(json.dumps(PROVENANCE))
    prov = read_pred_provenance(tmp_path / "p")
    _run(runs / "a.json", [_row("A", "beats_hit", 0.5)], inputs={"pred_provenance": prov})
    _run(runs / "b.json", [_row("B", "beats_hit", 0.4)])
    write_leaderboard(tmp_path / "results", notes=[], shipped=False)
    table = {r["system"]: r["provenance"] for r in csv.DictReader(open(tmp_path / "results" / "leaderboard.csv"))}
    assert table == {"A": "dance2music v2 @github.com/x/y@abc123 sf:0123456789ab", "B": ""}


def test_eval_records_the_provenance_of_the_pred_folder(tmp_path, cli):
    import soundfile as sf

    from d2m_bench.synth.synthetic import click_track

    for d in ("gt", "pred"):
        (tmp_path / d).mkdir()
        sf.write(str(tmp_path / d / "0.wav"), click_track([0.3, 1.3]), 22050)
    (tmp_path / "pred" / "provenance.json").write_text(json.dumps(PROVENANCE))
    out = tmp_path / "r.json"
    proc = cli("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--out", out, "--system", "s", "-q")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["inputs"]["pred_provenance"]["baseline"] == "dance2music"
    (tmp_path / "pred" / "provenance.json").write_text("[]")
    proc = cli("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--out", tmp_path / "r2.json", "-q")
    assert proc.returncode == 2 and "provenance.json: provenance file is not a JSON object" in proc.stderr
    assert not (tmp_path / "r2.json").exists()
