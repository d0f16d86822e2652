"""`d2m-bench validity`: the battery's transformations and metric cards, on cases whose answer
is known by construction."""
import csv
import json

import numpy as np
import pytest

from d2m_bench.io.audio import read_audio
from d2m_bench.synth.demo import make_demo
from d2m_bench.synth.synthetic import click_track
from d2m_bench.validity import battery
from d2m_bench.validity.run import ALPHA, analyse, power_notes, run_validity

SR = 22050


# --- the transformations ----------------------------------------------------------------------

def test_shift_gain_reverse_are_exact():
    y = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    s = battery.shift(y, SR, 0.1)
    assert len(s) == SR and not s[:2205].any() and np.array_equal(s[2205:], y[:-2205])
    spec = battery.TRANSFORMS["gain-20db"]
    assert 10 ** (spec["db"] / 20) == pytest.approx(0.1)


def test_lowpass_keeps_500hz_and_removes_5khz():
    t = np.arange(SR) / SR
    rms = lambda x: float(np.sqrt(np.mean(x[2000:-2000] ** 2)))  # noqa: E731 (edges: filter start-up)
    low, high = np.sin(2 * np.pi * 500 * t), np.sin(2 * np.pi * 5000 * t)
    assert rms(battery.lowpass(low, SR, 2000.0, 8)) == pytest.approx(rms(low), rel=1e-3)
    # order 8, zero phase (applied twice): 2 x 8 x 20 log10(5000/2000) = 127 dB down in theory
    assert 20 * np.log10(rms(battery.lowpass(high, SR, 2000.0, 8)) / rms(high)) < -80


def test_noise_levels_and_pink_slope():
    rng = np.random.default_rng(3)
    white, pink = battery.noise(2 ** 16, rng, "white"), battery.noise(2 ** 16, rng, "pink")
    for y in (white, pink):
        assert np.sqrt(np.mean(y.astype(float) ** 2)) == pytest.approx(battery.NOISE_RMS, rel=1e-4)
    power = np.abs(np.fft.rfft(pink.astype(float))) ** 2
    f = np.arange(len(power))
    band = (f > 10) & (f < 10000)
    slope = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.05)  # 1/f power


def test_metronome_follows_the_beat_grid_of_a_120_bpm_click_track():
    y = click_track(np.arange(0.1, 8.0, 0.5), duration=8.0)
    times = battery.beat_grid(y, SR)
    assert np.allclose(np.diff(times), 0.5, atol=0.03)  # librosa's tempo grid: 120 BPM +- a bin
    assert np.allclose(np.diff(battery.beat_grid(y, SR, 2)), 0.25, atol=0.015)


def test_mp3_goes_through_the_codec(tmp_path):
    y = click_track([0.2, 0.7, 1.2], duration=2.0, tone=220.0)
    battery.write_mp3(tmp_path / "a.mp3", y, SR, 64000)
    z, sr, _ = read_audio(tmp_path / "a.mp3", SR)
    assert sr == SR and abs(len(z) - len(y)) < SR // 20
    n = min(len(z), len(y))
    assert not np.array_equal(z[:n], y[:n]) and np.corrcoef(z[:n], y[:n])[0, 1] > 0.9  # lossy, same signal


# --- cards on known cases ---------------------------------------------------------------------

def _doc(values: dict, hib=True):
    return {"protocol": {"params": {}}, "excluded": {"clips": []},
            "aggregate": {"m": {"value": float(np.mean(list(values.values()))), "higher_is_better": hib,
                                "ci_column": "m"}},
            "per_clip": [{"id": k, "m": v} for k, v in values.items()]}


def test_cards_from_constructed_results():
    ids = [f"c{i:02d}" for i in range(12)]
    base = {i: 0.5 + 0.01 * k for k, i in enumerate(ids)}
    docs = {"identity": _doc(base),
            "same": _doc(dict(base)),  # the metric cannot change: p = 1, blind
            "lower": _doc({i: v - 0.2 - 0.001 * k for k, (i, v) in enumerate(base.items())}),
            "higher": _doc({i: v + 0.3 + 0.001 * k for k, (i, v) in enumerate(base.items())})}
    out = analyse(docs, ci={"level": 0.95, "n_resamples": 200, "seed": 0})
    card = out["cards"]["m"]
    assert card["detects"] == ["lower"] and card["rewards"] == ["higher"] and card["blind"] == ["same"]
    rows = {r["transformation"]: r for r in out["rows"]}
    assert rows["same"]["p"] == 1.0 and rows["identity"]["verdict"] == "reference"
    # exact two-sided Wilcoxon, 12 differences of one sign: 2 / 2^12; Holm over 3 tests
    assert rows["lower"]["p"] == pytest.approx(2 / 4096) and rows["lower"]["p_holm"] == pytest.approx(3 * 2 / 4096)
    lower_is_better = analyse({k: _doc({r["id"]: r["m"] for r in d["per_clip"]}, hib=False) for k, d in docs.items()},
                              ci={"level": 0.95, "n_resamples": 200, "seed": 0})["cards"]["m"]
    assert lower_is_better["detects"] == ["higher"] and lower_is_better["rewards"] == ["lower"]


def test_power_note():
    assert power_notes(12, 3) == []
    note = power_notes(6, 16)
    assert len(note) == 1 and "no transformation can be detected" in note[0]


@pytest.fixture(scope="module")
def validity_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("validity")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("D2M_BENCH_CACHE", str(root / "cache"))
        make_demo(root / "demo", n=10)
        doc = run_validity(root / "demo" / "gt", out=root / "out", workers=1,
                           only=["silence", "gain-20db", "metronome"])
    return root, doc


def test_identity_scores_as_identity_and_silence_is_detected(validity_run):
    root, doc = validity_run
    rows = {(r["metric"], r["transformation"]): r for r in doc["rows"]}
    for metric in ("beats_coverage", "beats_hit"):
        identity = rows[(metric, "identity")]
        assert identity["mean"] == 1.0 and identity["difference"] == 0.0 and identity["n"] == 10
        assert rows[(metric, "silence")]["mean"] == 0.0 and rows[(metric, "silence")]["verdict"] == "detects"
        assert rows[(metric, "silence")]["p_holm"] < ALPHA
        # gain does not move a single onset of these clicks: every difference is 0, not detected
        assert rows[(metric, "gain-20db")]["difference"] == 0.0 and rows[(metric, "gain-20db")]["verdict"] == "blind"
        assert "silence" in doc["cards"][metric]["detects"] and "gain-20db" in doc["cards"][metric]["blind"]
    written = json.loads((root / "out" / "validity.json").read_text())
    assert written["battery"]["version"] == battery.BATTERY_VERSION and written["gt_set"]["n"] == 10
    table = list(csv.DictReader(open(root / "out" / "validity.csv")))
    assert len(table) == 2 * 4 and {r["transformation"] for r in table} == {"identity", "silence", "gain-20db",
                                                                           "metronome"}
    result = json.loads((root / "out" / "results" / "metronome.json").read_text())
    assert result["transformation"]["name"] == "metronome" and result["transformation"]["seed"] == 0


def test_page_has_one_figure_per_metric(validity_run):
    root, doc = validity_run
    from d2m_bench.validity.page import write_page

    page = write_page(doc, root / "out").read_text()
    assert page.count("<svg") == 2 and "Metric cards" in page
    assert "<script" not in page and "<link" not in page and "src=" not in page  # nothing loads from anywhere


def test_cli_bad_input_is_one_line(tmp_path, cli):
    proc = cli("validity", "--out-dir", tmp_path / "o")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--gt" in proc.stderr
    (tmp_path / "gt").mkdir()
    proc = cli("validity", "--gt", tmp_path / "gt", "--out-dir", tmp_path / "o")
    assert proc.returncode == 2 and "at least two gt clips" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "o" / "validity.json").exists()
