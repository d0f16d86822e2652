"""Issue 24 rows 2, 3 and 11: result files are data.

A forged or malformed result is one line naming the field in `report` and `compare`, before
anything is written; values reach the page only escaped; the report copies only the audio that
was scored; names with line breaks cannot forge output lines.
"""
import copy
import json
import os
from html.parser import HTMLParser

import pytest

from d2m_bench.errors import UserError
from d2m_bench_tests.helpers import write_click_pairs

pytest.importorskip("matplotlib")

XSS = '"><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A real eval result of two click pairs (run from inside the folder, relative paths as usual)."""
    from d2m_bench.evaluation import evaluate

    root = tmp_path_factory.mktemp("scored")
    write_click_pairs(root, ["c0", "c1", "c2"])
    result = evaluate(root / "pred", root / "gt", workers=1, cache=False, system="sys")
    doc = result.to_dict()
    return root, json.loads(json.dumps(doc, default=str))


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return path


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def _elements(html_text):
    p = _Elements()
    p.feed(html_text)
    return p.found


def test_values_reach_the_page_only_escaped(scored, tmp_path):
    """Row 2: a string value ran script from a data-v attribute; names and notes too, in the
    single and the side-by-side report."""
    from d2m_bench.report import build_report

    _, doc = scored
    bad = copy.deepcopy(doc)
    bad["aggregate"]["beats_coverage"]["value"] = XSS
    with pytest.raises(UserError) as err:
        build_report([_write(tmp_path / "bad.json", bad)], tmp_path / "r0", workers=1, worst=0, best=0, random=0)
    assert "aggregate.beats_coverage.value" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "r0").exists()
    a = copy.deepcopy(doc)
    a["system"] = XSS
    a["aggregate"]["beats_coverage"]["ci_note"] = "<script>alert(2)</script>"
    a["warnings"] = [XSS]
    b = copy.deepcopy(doc)
    b["system"] = "</td><script>alert(3)</script>"
    index = build_report([_write(tmp_path / "a.json", a), _write(tmp_path / "b.json", b)], tmp_path / "r",
                         workers=1, worst=0, best=0, random=0)
    page = index.read_text()
    tags = _elements(page)
    assert not [t for t, attrs in tags if t == "img" or "onerror" in attrs]
    assert [t for t, _ in tags].count("script") == 1  # the page's own sorting script
    assert "side-by-side" in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_leaderboard_html_escapes_system_names(tmp_path):
    from d2m_bench.report.leaderboard_html import to_html

    row = {"system": XSS, "kind": "measured", "metric": "beats_hit", "value": 0.5, "protocol": "p",
           "protocol_hash": "0" * 64, "comparable_key": "<b>", "higher_is_better": True}
    tags = _elements(to_html([row]))
    assert not [t for t, attrs in tags if t in ("img", "b") or "onerror" in attrs]


def test_report_copies_only_the_scored_audio(scored, tmp_path, capfd):
    """Row 3: per_clip gt = ~/.ssh/id_rsa and pred = /etc/shadow were copied into report/audio/."""
    from d2m_bench.report import build_report

    root, doc = scored
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    forged = copy.deepcopy(doc)
    forged["per_clip"][0]["gt"] = str(secret)
    forged["per_clip"][0]["pred"] = "/etc/passwd"
    # Inside the pred folder, but not the file that was scored (same name, other content).
    swapped = root / "pred" / "c1.wav"
    original = swapped.read_bytes()
    cwd = os.getcwd()
    os.chdir(root.parent)  # the result's paths are absolute here; inputs are recorded as given
    try:
        swapped.write_bytes(original[:-2] + b"\x01\x02")
        index = build_report([_write(tmp_path / "f.json", forged)], tmp_path / "r", workers=1, worst=0, best=0,
                             random=0, clips=["c0", "c1", "c2"])
    finally:
        swapped.write_bytes(original)
        os.chdir(cwd)
    copied = sorted(p.name for p in (tmp_path / "r" / "audio").iterdir())
    # c0: neither (outside the recorded folders); c1: its gt (the pred was changed since); c2: both.
    assert copied == ["r0-1-gt.wav", "r0-2-gt.wav", "r0-2-pred.wav"], copied
    err = capfd.readouterr().err
    warned = [ln for ln in err.splitlines() if "left out of the report" in ln]
    assert any("id_rsa" in ln and "not inside" in ln for ln in warned), err
    assert any("/etc/passwd" in ln for ln in warned)
    assert any("c1" in ln and "content differs" in ln for ln in warned)
    assert "PRIVATE KEY" not in index.read_text()


def test_report_refuses_a_planted_link(scored, tmp_path, cli):
    _, doc = scored
    from d2m_bench.report.site import MARKER

    out = tmp_path / "r"
    out.mkdir()
    (out / MARKER).write_text("x")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (out / "audio").symlink_to(elsewhere)
    proc = cli("report", _write(tmp_path / "a.json", doc), "--out-dir", out, "-q")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "link" in proc.stderr, proc.stderr
    assert (elsewhere / "keep.txt").read_text() == "keep"


def _mutations():
    def setp(path, value):
        def f(d):
            node = d
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        return f

    return [
        ("per_clip", "a list", setp(["per_clip"], {"a": 1})),
        ("per_clip[0]", "an object", setp(["per_clip", 0], 7)),
        ("per_clip[0].id", "text", setp(["per_clip", 0, "id"], ["x"])),
        ("per_clip[0].gt_samples", "whole number", setp(["per_clip", 0, "gt_samples"], 10 ** 12)),
        ("per_clip[0].gt_events[0]", "finite number", setp(["per_clip", 0, "gt_events"], ["x"])),
        ("per_clip[0].gt", "path", setp(["per_clip", 0, "gt"], 5)),
        ("aggregate.beats_hit.ci.n_resamples", "whole number",
         setp(["aggregate", "beats_hit", "ci", "n_resamples"], 10 ** 9)),
        ("protocol.params.ci.n_resamples", "whole number", setp(["protocol", "params", "ci"], {"n_resamples": 10 ** 9})),
        ("protocol.params.audio.sample_rate", "whole number", setp(["protocol", "params", "audio", "sample_rate"], "x")),
        ("aggregate.beats_hit.value", "finite number", setp(["aggregate", "beats_hit", "value"], "0.5")),
        ("protocol", "an object", setp(["protocol"], [])),
        ("system", "text", setp(["system"], {"x": 1})),
    ]


@pytest.mark.parametrize("field,needle,mutate", _mutations(), ids=[m[0] for m in _mutations()])
def test_malformed_results_are_one_line_in_report_and_compare(scored, tmp_path, field, needle, mutate):
    """Row 11: 9 of 12 malformed results gave tracebacks in report, 9 of 13 in compare;
    gt_samples = 1e12 ran for 11 minutes; n_resamples = 1e9 asked for 89 GiB."""
    from d2m_bench.report import build_report
    from d2m_bench.results.compare import load_result

    _, doc = scored
    bad = copy.deepcopy(doc)
    mutate(bad)
    path = _write(tmp_path / "bad.json", bad)
    for load in (lambda: build_report([path], tmp_path / "r", workers=1), lambda: load_result(path)):
        with pytest.raises(UserError) as err:
            load()
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(str(path)) and field in msg and needle in msg, msg
    assert not (tmp_path / "r").exists()


def test_compare_bounds_resamples_and_keeps_names_on_one_line(scored, tmp_path, cli):
    _, doc = scored
    a = _write(tmp_path / "a.json", {**doc, "system": "x\nd2m-bench: error: forged"})
    b = _write(tmp_path / "b.json", doc)
    proc = cli("compare", a, b, "--resamples", 1_000_000_000)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "resamples" in proc.stderr, proc.stderr
    proc = cli("compare", a, b, "--resamples", 200)
    assert proc.returncode == 0, proc.stderr
    assert not [ln for ln in proc.stdout.splitlines() if ln.startswith("d2m-bench: error")]
    assert "x d2m-bench: error: forged" in proc.stdout


def test_mathtext_in_a_label_is_drawn_literally():
    """A genre label $\\frac{1}{$ raised matplotlib's ParseException after img/ was written."""
    from d2m_bench.report.figures import draw_distribution

    spec = {"id": "f", "metric": r"$\frac{1}{$", "centers": [0.0, 1.0], "counts": [1, 1], "edges": None,
            "mean": 0.5, "ci_percentile": None, "jitter": [0.0, 0.1], "values": [0.0, 1.0], "unit": "fraction",
            "n": 2, "ci_level": None}
    svg = draw_distribution(spec)
    assert r"\frac{1}{" in svg
