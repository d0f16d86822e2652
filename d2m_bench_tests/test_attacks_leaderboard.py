"""Issue 13, failure 8: a run value of Infinity was ranked first, NaN accepted; a run file that
is a JSON list, a row with no metric, or a string value gave a traceback."""
import csv
import json
import re

import pytest


def _row(system, value, **extra):
    return {"system": system, "protocol": "p", "protocol_hash": "h1", "metric": "beats_hit", "value": value,
            "unit": "fraction", "higher_is_better": True, "n": 4, **extra}


def _doc(rows):
    return {"complete": True, "created": "2026-01-01T00:00:00+00:00", "inputs": {}, "leaderboard": rows}


# name -> raw text of a run file; each is malformed in one way
BAD = {
    "infinity.json": '{"complete": true, "created": "2026", "inputs": {}, "leaderboard": '
                     '[{"system": "Cheat", "protocol": "p", "protocol_hash": "h1", "metric": "beats_hit", '
                     '"value": Infinity, "unit": "fraction", "higher_is_better": true, "n": 4}]}',
    "nan.json": json.dumps(_doc([_row("NaNsys", float("nan"))])),
    "list.json": json.dumps([_row("Listed", 0.9)]),
    "nometric.json": json.dumps(_doc([{k: v for k, v in _row("NoMetric", 0.9).items() if k != "metric"}])),
    "string.json": json.dumps(_doc([_row("Stringy", "0.99")])),
    "huge.json": '{"complete": true, "leaderboard": [{"system": "Huge", "protocol": "p", "protocol_hash": "h1", '
                 '"metric": "beats_hit", "value": 1' + "0" * 400 + ', "unit": "percent"}]}',
    "boardobj.json": json.dumps({"complete": True, "leaderboard": {"system": "x"}}),
    "rowlist.json": json.dumps(_doc([[1, 2, 3]])),
    "notjson.json": "{ this is not json",
    "bool.json": json.dumps(_doc([_row("Booly", True)])),
}


@pytest.fixture
def results(tmp_path):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    (runs / "good.json").write_text(json.dumps(_doc([_row("Honest", 0.5), _row("Better", 0.6)])))
    for name, text in BAD.items():
        (runs / name).write_text(text)
    return tmp_path / "results"


def test_only_finite_numbers_from_well_formed_files_are_ranked(results, cli):
    proc = cli("leaderboard", "--results", results, "--no-shipped")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    rows = list(csv.DictReader(open(results / "leaderboard.csv")))
    assert [(r["system"], r["rank"], r["value"]) for r in rows] == [("Better", "1", "60.00"), ("Honest", "2", "50.00")]
    warned = proc.stderr.strip().splitlines()
    for name in BAD:  # each skipped file is named in a warning of its own
        assert sum(f"/{name}: skipped" in line for line in warned) == 1, (name, warned)
    assert all(line.startswith("warning: ") for line in warned)


@pytest.mark.parametrize("name", sorted(BAD))
def test_strict_stops_at_the_malformed_file(tmp_path, cli, name):
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    (runs / name).write_text(BAD[name])
    proc = cli("leaderboard", "--results", tmp_path / "results", "--no-shipped", "--strict")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and str(runs / name) in lines[0], proc.stderr
    assert not (tmp_path / "results" / "leaderboard.csv").exists()


def test_reported_csv_rows_must_be_finite(tmp_path, cli):
    rep = tmp_path / "results" / "reported"
    rep.mkdir(parents=True)
    (rep / "paper.csv").write_text(
        "source,table,dataset,setting,system,metric,value,unit,protocol,protocol_hash,comparable_key,citation\n"
        "p,1,a,s,Inf,beats_hit,inf,percent,paper:x,,,c\n"
        "p,1,a,s,NaN,beats_hit,nan,percent,paper:x,,,c\n"
        "p,1,a,s,Short,beats_hit\n"
        "p,1,a,s,Real,beats_hit,41.5,percent,paper:x,,,c\n")
    proc = cli("leaderboard", "--results", tmp_path / "results", "--no-shipped")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(open(tmp_path / "results" / "leaderboard.csv")))
    assert [r["system"] for r in rows] == ["Real"]
    assert sum("paper.csv" in line and "skipped" in line for line in proc.stderr.splitlines()) == 3


def test_names_cannot_add_rows_or_markup(tmp_path, cli):
    """Issue 24 row 12: a system name `evil | 99.9 |\\n| injected row | measured` became an extra
    leaderboard.md row; raw <img> and ESC bytes passed into .md and .csv."""
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    evil = "evil | 99.9 |\n| injected row | measured <img src=x onerror=alert(1)> \x1b[2J"
    (runs / "evil.json").write_text(json.dumps(_doc([_row(evil, 0.5), _row("Honest", 0.4)])))
    proc = cli("leaderboard", "--results", tmp_path / "results", "--no-shipped")
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "results" / "leaderboard.md").read_text()
    table = [ln for ln in md.splitlines() if ln.startswith("| ") and "measured" in ln]
    assert len(table) == 2, md  # Honest and evil, nothing injected
    evil_line = next(ln for ln in table if "evil" in ln)
    assert len(re.findall(r"(?<!\\)\|", evil_line)) == 4  # three cells: system, kind, value
    assert "<img" not in md and "\x1b" not in md
    text = (tmp_path / "results" / "leaderboard.csv").read_text()
    assert "\x1b" not in text and len(list(csv.DictReader(text.splitlines()))) == 2
