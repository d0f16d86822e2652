"""One number, one display (issue 23): a result's Beats Hit printed by eval, compare, the report,
the leaderboard and the LaTeX/CSV tables reads the same everywhere; the LaTeX table compiles;
`d2m-bench cite` lists what a result relies on; eval warns on swapped or copied folders.

Golden values are worked out by hand from the click tracks written here: the gt clips have an
onset in both 1-s bins; predictions hit both bins (1.0) except one that hits only the first
(0.5), so Beats Hit = (1 + 0.5 + 1 + 1) / 4 = 0.875, displayed 87.5%; a copy of the gt scores
1.0, a difference of +12.5 percentage points.
"""
import csv
import json
import shutil
import subprocess

import pytest
import soundfile as sf

from d2m_bench.synth.synthetic import click_track

SR = 22050
ONLY_BEATS = {"genre.enabled": False, "alignment.enabled": False}
PRED = {"a": [0.42, 1.42], "b": [0.42], "c": [0.45, 1.45], "d": [0.48, 1.48]}  # same bins as the gt's, other bytes


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two systems scored on four clips, written where the leaderboard reads them."""
    from d2m_bench import evaluate

    root = tmp_path_factory.mktemp("units")
    for cid, times in PRED.items():
        for side, t in (("gt", [0.4, 1.4]), ("generated", times)):
            (root / side).mkdir(exist_ok=True)
            sf.write(str(root / side / f"{cid}.wav"), click_track(t), SR)
    shutil.copytree(root / "gt", root / "copy")
    runs = root / "results" / "runs"
    runs.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("D2M_BENCH_CACHE", str(root / "cache"))
        with pytest.warns(UserWarning, match="byte copies"):  # the copy of the gt is said to be one
            perfect = evaluate(root / "copy", root / "gt", system="perfect", workers=1, overrides=ONLY_BEATS)
        mine = evaluate(root / "generated", root / "gt", system="mine", workers=1, overrides=ONLY_BEATS)
    mine.write_json(runs / "mine.json")
    perfect.write_json(runs / "perfect.json")
    return {"root": root, "mine": mine, "paths": [runs / "mine.json", runs / "perfect.json"]}


def test_the_same_number_reads_the_same_everywhere(runs, tmp_path):
    from d2m_bench.report import build_report
    from d2m_bench.report.leaderboard_html import to_html
    from d2m_bench.results.compare import compare, load_result, table
    from d2m_bench.results.latex import from_leaderboard, from_results, to_csv, to_latex
    from d2m_bench.results.leaderboard import build_leaderboard, to_markdown

    mine = runs["mine"]
    assert mine.aggregate["beats_hit"]["value"] == pytest.approx(0.875)  # raw in the result, ratio kept
    assert json.loads(runs["paths"][0].read_text())["aggregate"]["beats_hit"]["unit"] == "fraction"

    eval_line = next(line for line in mine.table().splitlines() if line.startswith("beats_hit "))
    assert "87.5%" in eval_line.split()

    docs = [load_result(p) for p in runs["paths"]]
    cmp_line = next(line for line in table(compare(docs)).splitlines() if line.startswith("beats_hit "))
    assert "87.5%" in cmp_line.split() and "100.0%" in cmp_line.split()
    assert "+12.5 pp" in cmp_line  # the difference in percentage points, not +0.1250

    index = build_report(runs["paths"], tmp_path / "rep", worst=1, best=0, random=0, workers=1)
    page = index.read_text()
    assert '<td data-v="0.875">87.5%</td>' in page  # the aggregates table
    assert "mean 87.5%" in page  # the distribution figure's title
    assert "beats_hit (%)" in page  # its axes and the cross-system figure's, in the display unit
    assert "+12.5 pp" in page  # the compare table and matrix

    rows = build_leaderboard(runs["root"] / "results", notes=[], shipped=False)
    # beats_coverage and beats_hit: both 0.875 here (clip b fills one of two gt bins)
    assert "| mine | measured | 87.5% | 87.5% |" in to_markdown(rows)
    assert ">87.5%</td>" in to_html(rows)

    latex = to_latex(from_results(docs, ["mine", "perfect"]))
    assert "beats\\_hit (\\%)" in latex
    mine_row = next(line for line in latex.splitlines() if line.startswith("mine &"))
    assert " 87.5 " in mine_row  # the unit is in the column head
    assert "87.5" in to_latex(from_leaderboard(rows))
    cells = {(r["system"], r["metric"]): r for r in csv.DictReader(to_csv(from_results(docs, ["mine", "perfect"]))
                                                                   .splitlines())}
    assert cells[("mine", "beats_hit")]["value"] == "87.5" and cells[("mine", "beats_hit")]["unit"] == "%"
    assert cells[("perfect", "beats_hit")]["best"] == "1" and cells[("mine", "beats_hit")]["best"] == "0"


def test_latex_table_marks_best_and_reported_and_compiles(runs, tmp_path):
    from d2m_bench.results.latex import from_leaderboard, tex_escape, to_latex

    rows = [
        {"protocol": "p", "protocol_hash": "h" * 64, "comparable_key": "", "metric": "beats_hit", "system": "Paper_A",
         "kind": "reported", "value": 90.0, "unit": "percent", "higher_is_better": True},
        {"protocol": "p", "protocol_hash": "h" * 64, "comparable_key": "", "metric": "beats_hit", "system": "Mine & co",
         "kind": "measured", "value": 87.5, "unit": "percent", "higher_is_better": True},
        {"protocol": "p", "protocol_hash": "h" * 64, "comparable_key": "", "metric": "fad_vggish", "system": "Mine & co",
         "kind": "measured", "value": 3.25, "unit": "score", "higher_is_better": False},
        {"protocol": "p", "protocol_hash": "h" * 64, "comparable_key": "", "metric": "fad_vggish", "system": "Paper_A",
         "kind": "reported", "value": 4.5, "unit": "score", "higher_is_better": False},
    ]
    tex = to_latex(from_leaderboard(rows))
    assert r"Paper\_A$^\dagger$ & \textbf{90.0} & 4.5 \\" in tex  # higher beats_hit is better
    assert r"Mine \& co & 87.5 & \textbf{3.25} \\" in tex  # lower FAD is better
    assert r"\toprule" in tex and r"\bottomrule" in tex and "reported in the paper" in tex
    assert tex_escape("a_b%c$#{}~^\\") == r"a\_b\%c\$\#\{\}\textasciitilde{}\textasciicircum{}\textbackslash{}"
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (Debian: texlive-latex-base texlive-latex-recommended; make sysdeps)")
    from d2m_bench.report.site import load_inputs
    from d2m_bench.results.latex import from_results

    evals, _ = load_inputs(runs["paths"])
    (tmp_path / "lb.tex").write_text(tex)
    (tmp_path / "runs.tex").write_text(to_latex(from_results(evals, ["mine", "perfect"])))
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}"
                                      "\\input{lb.tex}\\input{runs.tex}\\end{document}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_latex_and_csv_from_the_cli(runs, tmp_path, cli):
    proc = cli("leaderboard", "--results", runs["root"] / "results", "--no-shipped", "--latex", tmp_path / "lb.tex")
    assert proc.returncode == 0, proc.stderr
    assert "measured from 2 run file(s)" in proc.stdout
    assert "87.5" in (tmp_path / "lb.tex").read_text() and "87.5" in (tmp_path / "lb.csv").read_text()
    proc = cli("leaderboard", "--results", runs["root"] / "results" / "runs", "--no-shipped")
    assert proc.returncode == 0 and "2 result file(s) not read" in proc.stderr and "--results" in proc.stderr


def test_units_rule_by_hand():
    from d2m_bench.results.units import axis_label, format_difference, format_interval, format_value

    assert format_value(1.0833, "ratio") == "108.3%"  # Beats Coverage may exceed 1
    assert format_value(0.958333, "fraction") == "95.8%" and format_value(95.8, "percent") == "95.8%"
    assert format_value(3.14159, "score") == "3.142" and format_value(None, "score") == "-"
    assert format_value(float("nan"), "fraction") == "-"
    assert format_difference(0.125, "fraction") == "+12.5 pp" and format_difference(-0.5, "score") == "-0.5"
    assert format_interval(0.5, 1.0, "fraction") == "[50.0%, 100.0%]"
    assert axis_label("beats_hit", "fraction") == "beats_hit (%)" and axis_label("fad", "score") == "fad"


def test_cite_lists_what_a_result_relies_on(runs, cli):
    from d2m_bench.citations import PAPERS, papers_for_protocol

    proc = cli("cite", "--result", runs["paths"][0], "--list")
    # the D2M-GAN beat metrics on the default protocol; genre and alignment were off in this run
    assert proc.returncode == 0 and proc.stdout.splitlines() == [
        f"{k}: {PAPERS[k].what}" for k in ("yezhu2022quantizedgan", "li2021dance")]
    full = [p.key for p in papers_for_protocol("d2m-aistpp-2s")]
    assert {"hershey2017cnn", "kilgour2018fad", "siyao2022bailando"} <= set(full)
    assert [p.key for p in papers_for_protocol("loris")] == ["Yu2023Long"]
    bib = cli("cite", "-p", "loris").stdout
    assert bib.startswith("@software{d2m_bench,") and "@inproceedings{Yu2023Long," in bib
    for p in PAPERS.values():  # every entry balanced, its key the one listed
        if p.bibtex:
            assert p.bibtex.count("{") == p.bibtex.count("}") and p.bibtex.split("{", 1)[1].startswith(p.key + ",")


def test_eval_warns_at_once_on_swapped_folders_and_missing_system(runs, tmp_path, cli):
    root = runs["root"]
    pred = tmp_path / "generated"
    shutil.copytree(root / "generated", pred)
    (pred / "provenance.json").write_text(json.dumps({"baseline": "silence"}))
    out = tmp_path / "results" / "runs" / "x.json"
    out.parent.mkdir(parents=True)
    # swapped: --gt is the folder with the provenance.json of generated audio
    proc = cli("eval", "--pred", root / "gt", "--gt", pred, "-j", "1", "-q", "--out", out, "-p", "d2m-tiktok-2s")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("d2m-bench: warning: no --system:") and "left off the leaderboard" in lines[0]
    assert sum("look swapped" in line for line in lines) == 1  # said once, before the run
    assert any("look swapped" in w for w in json.loads(out.read_text())["warnings"])


def test_lookalike_by_hand(tmp_path):
    from d2m_bench.io.lookalike import identical_note, swapped_note
    from d2m_bench.io.pairing import Pair

    gt, gen = tmp_path / "gt", tmp_path / "generated"
    gt.mkdir()
    gen.mkdir()
    for i in range(4):
        (gt / f"{i}.wav").write_bytes(b"RIFF" + bytes([i]) * 50)
        (gen / f"{i}.wav").write_bytes(b"RIFF" + bytes([i]) * 50 if i < 3 else b"other")
    pairs = [Pair(str(i), gt / f"{i}.wav", gen / f"{i}.wav") for i in range(4)]
    assert identical_note(pairs, gen).startswith("3 of 4 predictions checked")
    assert identical_note(pairs[3:], gen) is None
    assert "named 'gt'" in swapped_note(gt, gen) and swapped_note(gen, gt) is None
    (gen / "provenance.json").write_text(json.dumps({"baseline": "ground-truth"}))
    assert identical_note(pairs, gen) is None  # the gt reference system copies on purpose
