"""`d2m-bench report` without a browser: clip selection and bins by hand, the output-folder
rule, bad input as one line, and `leaderboard --html` from the CLI."""
import json

import numpy as np
import pytest

from d2m_bench.report import specs as sp

pytest.importorskip("matplotlib")


def _doc(tmp_path, hits, events=None):
    import soundfile as sf

    import hashlib

    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(44100, "float32"), 22050)
    digest = hashlib.sha256(wav.read_bytes()).hexdigest()  # what eval records since issue 24
    rows = []
    for i, h in enumerate(hits):
        gt, pred = events[i] if events else ([0.5, 1.5], [0.5])
        rows.append({"id": f"c{i}", "gt": str(wav), "pred": str(wav), "gt_samples": 44100, "pred_samples": 44100,
                     "gt_events": gt, "pred_events": pred, "beats_hit": h, "gt_sha256": digest,
                     "pred_sha256": digest})
    doc = {"tool": "d2m-bench", "complete": True, "system": "s", "per_clip": rows,
           "inputs": {"pred": str(tmp_path), "gt": str(tmp_path), "manifest": None},
           "aggregate": {"beats_hit": {"value": float(np.mean(hits)), "n": len(hits), "ci_column": "beats_hit"}},
           "protocol": {"name": "p", "hash": "0" * 64, "params": {"audio": {"sample_rate": 22050},
                                                                   "beats": {"variant": "d2m", "bin_seconds": 1.0}}},
           "excluded": {"count": 0, "clips": []}}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    return doc, path


def test_select_clips_worst_best_random_and_chosen(tmp_path):
    doc, _ = _doc(tmp_path, [1.0, 0.5, 1.0, 0.0, 1.0, 0.5, 1.0])
    picked = sp.select_clips(doc, "beats_hit", worst=2, best=2, random=2, seed=3, chosen=["c6"])
    assert picked[0] == ("c6", "chosen")
    # 0.0, then 0.5 (lower id first); c5 also scores 0.5 and is left out: the caption says so
    assert [c for c, w in picked if w.startswith("lowest")] == ["c3", "c1"]
    assert dict(picked)["c3"] == "lowest 2 of 7 by beats_hit; 2 clips tie at 50.0%"
    # 1.0 ties by id; c6 already shown; four clips score 1.0 and only two are shown here
    assert [c for c, w in picked if w.startswith("highest")] == ["c0", "c2"]
    assert dict(picked)["c0"] == "highest 2 of 7 by beats_hit; 4 clips tie at 100.0%"
    rest = ["c4", "c5"]  # what is left after chosen, worst and best
    assert sorted(c for c, w in picked if w == "random sample") == rest
    assert len({c for c, _ in picked}) == len(picked) == 7


def test_beat_spec_bins_by_hand(tmp_path):
    doc, _ = _doc(tmp_path, [0.5], events=[([0.2, 0.9, 1.4], [1.7, 1.99])])
    spec = sp.beat_spec(doc, doc["per_clip"][0], "f", "x")
    # gt onsets in seconds 0 and 1; generated only in second 1 -> one hit, gt bin 0 missed
    assert spec["gt_bins"] == [1, 1] and spec["pred_bins"] == [0, 1] and spec["hit_bins"] == [0, 1]


def test_distribution_counts_by_hand(tmp_path):
    doc, _ = _doc(tmp_path, [1.0, 0.5, 1.0, 0.0, 1.0, 0.5, 1.0])
    spec = sp.distribution_spec(doc, "beats_hit", "d")
    assert spec["centers"] == [0.0, 0.5, 1.0] and spec["counts"] == [1, 2, 4] and spec["n"] == 7


def test_report_cli_writes_site_and_refuses_foreign_folder(tmp_path, cli):
    _, path = _doc(tmp_path, [1.0, 0.5, 1.0, 0.0])
    out = tmp_path / "rep"
    proc = cli("report", path, "--out-dir", out, "--worst", "1", "--best", "1", "--random", "0", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out / "index.html")
    assert len(list((out / "img").glob("*.png"))) == 2 and len(list((out / "audio").glob("*.wav"))) == 4
    again = cli("report", path, "--out-dir", out, "--clips", "c1", "--worst", "0", "--best", "0", "--random", "0",
                "--self-contained", "--latex", tmp_path / "t.tex")
    assert again.returncode == 0, again.stderr  # an earlier report may be rewritten
    assert len(list((out / "img").glob("*.png"))) == 1
    assert again.stdout.strip() == f"wrote {out / 'index.html'}, {out / 'report.html'}, {tmp_path / 't.tex'}, " \
                                   f"{tmp_path / 't.csv'}"
    single = (out / "report.html").read_text()
    assert "data:image/png;base64," in single and "data:audio/wav;base64," in single and 'src="img/' not in single
    # mean of 1, .5, 1, 0 = 62.5%; the one system is nobody's best (no bold in a column of one)
    assert "s & 62.5" in (tmp_path / "t.tex").read_text() and "textbf" not in (tmp_path / "t.tex").read_text()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    proc = cli("report", path, "--out-dir", foreign)
    assert proc.returncode == 2 and "not written by `d2m-bench report`" in proc.stderr
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_report_bad_inputs_are_one_line(tmp_path, cli):
    _, path = _doc(tmp_path, [1.0, 0.5])
    proc = cli("report", path, "--out-dir", tmp_path / "o", "--clips", "nope")
    assert proc.returncode == 2 and "no clip with id nope" in proc.stderr and proc.stderr.count("\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1}')
    proc = cli("report", bad, "--out-dir", tmp_path / "o2")
    assert proc.returncode == 2 and "neither a d2m-bench eval result" in proc.stderr and proc.stderr.count("\n") == 1


def test_leaderboard_html_cli(tmp_path, cli):
    proc = cli("leaderboard", "--results", tmp_path / "res", "--html")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "res" / "leaderboard.html").read_text()
    csv_rows = (tmp_path / "res" / "leaderboard.csv").read_text().splitlines()[1:]
    groups = {tuple(line.split(",")[:3]) for line in csv_rows}
    assert page.count('<table class="sortable leaderboard"') == len(groups)
    assert "http://" not in page and "https://" not in page
