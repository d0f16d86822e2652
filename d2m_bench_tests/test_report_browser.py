"""The report and the HTML leaderboard in headless Chromium: no console error, every image and
audio element loads, and what the figures draw is checked against the result files (bar
heights against per-clip counts, heat-map cells against the retrieved genres, bins against the
onset times). Skips (with the reason) without chromium, chromedriver or selenium."""
import csv
import json
import math
import shutil
import time
from collections import Counter

import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Two demo systems + a MOS aggregate in one report; a dataset run with genre and
    alignment sections in another; a leaderboard page over the demo runs."""
    pytest.importorskip("matplotlib")
    from d2m_bench import evaluate
    from d2m_bench.synth.demo import make_demo
    from d2m_bench.mos.aggregate import aggregate, write_outputs
    from d2m_bench.report import build_report
    from d2m_bench.synth.synthetic import make_tiny_dataset

    tmp = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("D2M_BENCH_CACHE", str(tmp / "cache"))
        demo = make_demo(tmp / "demo")
        shutil.copytree(demo / "gt", demo / "perfect")
        runs = tmp / "results" / "runs"
        runs.mkdir(parents=True)
        for name, pred in (("demo", "generated"), ("perfect", "perfect")):
            evaluate(demo / pred, demo / "gt", system=name, workers=1).write_json(runs / f"{name}.json")
        ds = make_tiny_dataset(tmp / "ds", n_train=10, n_test=6)
        gts = sorted((ds / "audio" / "test").glob("*.wav"))
        pred = tmp / "ds_pred"
        pred.mkdir()
        for i, g in enumerate(gts):  # each prediction is another clip's music: partly right, partly wrong
            shutil.copyfile(gts[(i + 1) % len(gts)] if i % 2 else g, pred / g.name)
        evaluate(pred, ds / "audio" / "test", data=ds, system="ds", workers=1,
                 overrides={"genre.embedder": "mfcc-chroma"}).write_json(tmp / "ds.json")
        rng = np.random.default_rng(0)
        with open(tmp / "ratings.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["rater", "item", "system", "aspect", "score", "playback_complete"])
            for r in range(5):
                for it in range(6):
                    for system, base in (("sysA", 3), ("sysB", 4)):
                        for aspect in ("coherence", "quality"):
                            w.writerow([f"r{r}", f"i{it}", system, aspect, int(np.clip(base + rng.integers(-1, 2), 1, 5)), 1])
        write_outputs(aggregate(tmp / "ratings.csv"), tmp / "mos")
        one = build_report([runs / "demo.json", runs / "perfect.json", tmp / "mos" / "mos.json"], tmp / "rep1",
                           worst=3, best=3, random=2, workers=2)
        two = build_report([tmp / "ds.json"], tmp / "rep2", worst=2, best=2, random=1, envelopes=True, workers=2)
    from d2m_bench.results.leaderboard import write_leaderboard
    from d2m_bench.report.leaderboard_html import write_html

    rows = write_leaderboard(tmp / "results")
    board = write_html(rows, tmp / "results" / "leaderboard.html")
    return {"one": one, "two": two, "board": board, "rows": rows, "tmp": tmp,
            "demo": json.loads((runs / "demo.json").read_text()), "perfect": json.loads((runs / "perfect.json").read_text()),
            "ds": json.loads((tmp / "ds.json").read_text()), "mos": json.loads((tmp / "mos" / "mos.json").read_text())}


def _open(driver, path):
    driver.get(path.resolve().as_uri())
    end = time.monotonic() + 20
    while time.monotonic() < end:  # images decoded, audio metadata read (or failed)
        state = driver.execute_script(
            "return [Array.from(document.images).every(i => i.complete),"
            " Array.from(document.querySelectorAll('audio')).every(a => a.readyState >= 1 || a.error)]")
        if all(state):
            break
        time.sleep(0.1)


def _assert_clean(driver):
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, errors
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    assert not broken
    bad_audio = driver.execute_script(
        "return Array.from(document.querySelectorAll('audio')).filter(a => a.error || a.readyState < 1)"
        ".map(a => a.src)")
    assert not bad_audio
    assert not driver.execute_script(
        "return Array.from(document.querySelectorAll('[src]')).map(e => e.getAttribute('src'))"
        ".filter(s => /^(https?:)?\\/\\//.test(s))")  # nothing from the network


def _specs(driver, kind):
    return driver.execute_script(
        f"return Array.from(document.querySelectorAll('figure[data-kind={kind}]')).map(f => JSON.parse(f.dataset.spec))")


def _values(doc, col):
    return [r[col] for r in doc["per_clip"] if isinstance(r.get(col), (int, float))]


def test_report_loads_and_distributions_match_the_clips(reports, chromium):
    _open(chromium, reports["one"])
    _assert_clean(chromium)
    specs = _specs(chromium, "distribution")
    assert {s["metric"] for s in specs} == {"beats_coverage", "beats_hit"} and len(specs) == 4
    for spec in specs:
        doc = reports["demo"] if spec["system"] == "demo" else reports["perfect"]
        vals = _values(doc, spec["metric"])
        want = Counter(vals)  # quantised 2-s scores: one bar per distinct value
        assert spec["centers"] == sorted(want) and spec["counts"] == [want[v] for v in sorted(want)]
        assert sum(spec["counts"]) == len(doc["per_clip"])
        assert spec["ci_percentile"] == doc["aggregate"][spec["metric"]]["ci"]["percentile"]
        fid = spec["id"]
        heights = chromium.execute_script(
            f"return Array.from(document.querySelectorAll('[id^=\"{fid}-bar-\"]')).map(g => g.getBBox().height)")
        assert len(heights) == len(want)
        np.testing.assert_allclose(np.array(heights) / max(heights), np.array(spec["counts"]) / max(spec["counts"]),
                                   atol=0.02)  # bars drawn in proportion to the clip counts
        dots = chromium.execute_script(f"return document.getElementById('{fid}-strip').querySelectorAll('use').length")
        assert dots == len(vals)


def test_report_clip_figures_from_onsets_and_audio_players(reports, chromium):
    _open(chromium, reports["one"])
    specs = [s for s in _specs(chromium, "beats") if s["system"] == "demo"]
    hits = sorted(((r["beats_hit"], r["id"]) for r in reports["demo"]["per_clip"]))
    assert [s["clip"] for s in specs[:3]] == [i for _, i in hits[:3]]  # the three worst first
    assert len(specs) == 3 + 3 + 2
    rows = {r["id"]: r for r in reports["demo"]["per_clip"]}
    for s in specs:
        r = rows[s["clip"]]
        gt = [0] * math.ceil(r["gt_samples"] / 22050)
        for t in r["gt_events"]:
            gt[int(t)] = 1
        pred = [0] * math.ceil(r["pred_samples"] / 22050)
        for t in r["pred_events"]:
            pred[int(t)] = 1
        assert s["gt_bins"] == gt and s["pred_bins"] == pred
        assert sum(s["hit_bins"]) == r["hit_bins"] and sum(gt) == r["gt_bins"]
    n_audio = chromium.execute_script("return document.querySelectorAll('figure[data-kind=beats] audio').length")
    assert n_audio == 2 * len(_specs(chromium, "beats"))


def test_report_genre_heat_map_alignment_and_envelopes(reports, chromium):
    _open(chromium, reports["two"])
    _assert_clean(chromium)
    doc = reports["ds"]
    (spec,) = _specs(chromium, "genre")
    pairs = Counter((r["genre"], r["genre_retrieved"]) for r in doc["per_clip"] if r.get("genre"))
    for i, true in enumerate(spec["labels"]):
        for j, got in enumerate(spec["labels"]):
            text = chromium.execute_script(f"return document.getElementById('{spec['id']}-count-{i}-{j}').textContent")
            assert int(text.strip()) == pairs.get((true, got), 0)
    assert sum(map(sum, spec["matrix"])) == len(doc["per_clip"])
    acc = np.mean([r["genre_correct"] for r in doc["per_clip"]])
    assert spec["accuracy"] == pytest.approx(acc)
    (fad,) = _specs(chromium, "fad")
    inf = doc["aggregate"]["fad_mfcc_chroma"]["fad_inf"]
    assert fad["sizes"] == inf["sizes"] and fad["intercept"] == inf["value"]
    points = chromium.execute_script(f"return document.getElementById('{fad['id']}-points').querySelectorAll('use').length")
    assert points == len(inf["sizes"])
    aligned = _specs(chromium, "alignment")
    assert len(aligned) == len(_specs(chromium, "beats")) == 5
    rows = {r["id"]: r for r in doc["per_clip"]}
    for s in aligned:
        assert len(s["kinematic"]) == rows[s["clip"]]["kinematic_beats_fact"]
        assert len(s["music_pred"]) == rows[s["clip"]]["music_beats"]
    for s in _specs(chromium, "beats"):  # --envelopes: one onset-strength value per hop
        assert len(s["gt_envelope"]) == 1 + rows[s["clip"]]["gt_samples"] // 512
        assert max(s["gt_envelope"]) == pytest.approx(1.0)


def test_report_mos_and_compare_sections(reports, chromium):
    _open(chromium, reports["one"])
    (spec,) = _specs(chromium, "mos")
    assert len(spec["rows"]) == len(reports["mos"]["systems"]) == 4
    dots = chromium.execute_script(f"return document.querySelectorAll('[id^=\"{spec['id']}-mean-\"]').length")
    assert dots == 4
    cells = chromium.execute_script(
        "return Array.from(document.querySelectorAll('table.compare tbody tr')).map(r => r.cells[4].dataset.v)")
    assert len(cells) == 2
    d = np.mean([1.0 - r["beats_hit"] for r in reports["demo"]["per_clip"]])
    assert float(cells[1]) == pytest.approx(d)
    grid = chromium.execute_script(
        "return Array.from(document.querySelector('table.matrix[data-metric=beats_hit]').tBodies[0].rows)"
        ".map(r => Array.from(r.cells).slice(1).map(c => c.dataset.v || null))")
    assert grid[0][0] is None and grid[1][1] is None  # demo, perfect: no system against itself
    assert float(grid[0][1]) == pytest.approx(d) and float(grid[1][0]) == pytest.approx(-d)


def test_leaderboard_page_groups_sorts_and_marks(reports, chromium):
    _open(chromium, reports["board"])
    _assert_clean(chromium)
    rows = reports["rows"]
    # one table per protocol hash, comparable key and gt set (issue 21)
    group = lambda r: (r["protocol"], r["protocol_hash"], r["comparable_key"] or "", r.get("gt_set_key") or "")
    groups = {group(r) for r in rows}
    tables = chromium.execute_script(
        "return Array.from(document.querySelectorAll('table.leaderboard')).map(t => [t.dataset.protocol, t.dataset.hash,"
        " t.dataset.key, t.dataset.gtSet, t.tBodies[0].rows.length, t.querySelectorAll('tr.measured').length])")
    assert {tuple(t[:4]) for t in tables} == groups and len(tables) == len(groups)
    tables = [[p, h, k, n, m] for p, h, k, _, n, m in tables]
    keys = [tuple(t) for t in chromium.execute_script(
        "return Array.from(document.querySelectorAll('table.leaderboard')).map(t => [t.dataset.protocol, t.dataset.hash,"
        " t.dataset.key, t.dataset.gtSet])")]
    for (proto, h, key, n_rows, n_measured), g in zip(tables, keys):
        mine = [r for r in rows if group(r) == g]
        assert n_rows == len({(r["system"], r["kind"]) for r in mine})
        assert n_measured == len({r["system"] for r in mine if r["kind"] == "measured"})
    # the demo runs' table: click beats_hit twice -> descending by value
    idx = next(i for i, t in enumerate(tables) if t[4] == 2)
    chromium.execute_script(f"document.querySelectorAll('table.leaderboard')[{idx}]"
                            ".querySelector('th[data-metric=beats_hit]').click()")
    vals = chromium.execute_script(
        f"const t = document.querySelectorAll('table.leaderboard')[{idx}];"
        "const i = Array.from(t.tHead.rows[0].cells).findIndex(c => c.dataset.metric === 'beats_hit');"
        "return Array.from(t.tBodies[0].rows).map(r => r.cells[i].dataset.v)")
    nums = [float(v) for v in vals if v]
    assert nums == sorted(nums)


# --- issue 23: paper-ready figures, read at 1280 px --------------------------------------------

def test_cross_system_figure_and_readable_text_at_1280_px(reports, chromium):
    from d2m_bench.report.figures import DPI, FONT_PT, WIDTH_IN

    chromium.set_window_size(1280, 900)
    _open(chromium, reports["one"])
    _assert_clean(chromium)
    specs = {s["metric"]: s for s in _specs(chromium, "systems")}
    assert set(specs) == {"beats_coverage", "beats_hit"}
    for metric, spec in specs.items():
        want = [(d["system"], d["aggregate"][metric]["value"], d["aggregate"][metric]["ci"]["percentile"])
                for d in (reports["demo"], reports["perfect"])]
        assert [(r["system"], r["value"], r["ci"]) for r in spec["rows"]] == want
        shown = chromium.execute_script(
            f"const f = document.getElementById('{spec['id']}'); const r = f.getBoundingClientRect();"
            f"return [r.width, r.height, document.querySelectorAll('[id^=\"{spec['id']}-mean-\"]').length,"
            f" document.querySelectorAll('[id^=\"{spec['id']}-ci-\"]').length]")
        assert shown[0] > 300 and shown[1] > 100 and shown[2:] == [2, 2]
    # every text of every inline figure reads at >= 9 pt as displayed (1 CSS px = 0.75 pt; the scale of
    # the screen transform, rotated axis labels included)
    sizes = chromium.execute_script(
        "return Array.from(document.querySelectorAll('figure svg text')).map(t =>"
        " parseFloat(getComputedStyle(t).fontSize) * Math.hypot(t.getScreenCTM().a, t.getScreenCTM().b) * 0.75)")
    assert sizes and min(sizes) >= FONT_PT - 0.05, min(sizes)
    # per-clip PNGs: print resolution, shown at their print width, so their 9-pt text stays 9 pt
    imgs = chromium.execute_script(
        "return Array.from(document.querySelectorAll('figure[data-kind=beats] img')).map(i =>"
        " [i.naturalWidth, i.getBoundingClientRect().width])")
    assert imgs
    for natural, shown in imgs:
        assert natural >= WIDTH_IN * DPI - 1 and shown * 0.75 / (WIDTH_IN * 72) * FONT_PT >= FONT_PT - 0.05
    from PIL import Image

    png = next((reports["one"].parent / "img").glob("r0-clip-*.png"))
    assert round(Image.open(png).info["dpi"][0]) == DPI
    assert png.with_suffix(".svg").read_text().lstrip().startswith("<?xml")  # the vector copy beside it
    assert (reports["one"].parent / "img" / f"{specs['beats_hit']['id']}.pdf").read_bytes()[:5] == b"%PDF-"
    captions = chromium.execute_script(
        "return Array.from(document.querySelectorAll('figure[data-kind=beats] figcaption')).map(c => c.textContent)")
    # the fixture draws the 3 lowest of the demo's 12 clips: the caption names a tie across the cut
    hits = sorted(r["beats_hit"] for r in reports["demo"]["per_clip"])
    edge = hits[2]
    tie = f"; {hits.count(edge)} clips tie at {100 * edge:.1f}%" if hits.count(edge) > hits[:3].count(edge) else ""
    assert captions[0].endswith(f"(lowest 3 of {len(hits)} by beats_hit{tie})"), captions[0]


def test_self_contained_report_is_one_file(reports, chromium, tmp_path):
    from d2m_bench.report.inline import inline_report

    alone = tmp_path / "alone"
    alone.mkdir()
    single = inline_report(reports["one"], alone / "report.html")  # nothing beside it
    assert sorted(p.name for p in alone.iterdir()) == ["report.html"]
    text = single.read_text()
    assert 'src="img/' not in text and 'src="audio/' not in text and "data:image/png;base64," in text
    _open(chromium, single)
    _assert_clean(chromium)  # every image decodes and every audio clip loads from the page itself
    assert chromium.execute_script("return document.querySelectorAll('audio').length") > 0
