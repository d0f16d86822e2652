"""Eval's sanity section (issue 14 item 7): level against the gt, silence and sameness warnings,
on synthetic signals whose RMS and loudness are known in closed form. The metric values stay
as they were: a near-silent copy of the gt still scores 100 % / 100 %, and is now flagged."""
import json
import math

import numpy as np
import pytest

from d2m_bench.io.audio import write_audio
from d2m_bench.evaluation import evaluate
from d2m_bench.sections.sanity import clip_row, envelope, envelope_spread, integrated_loudness, k_weighting, levels
from d2m_bench.synth.synthetic import click_track


def _sine(amp, sr, seconds=3.0, freq=997.0):
    return amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)


def test_k_weighting_at_48k_is_the_standards_table():
    # ITU-R BS.1770-4, Tables 1 and 2 (stage 1 shelf, stage 2 high-pass), a0 = 1.
    want = [[1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585],
            [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]]
    np.testing.assert_allclose(k_weighting(48000), want, rtol=0, atol=1e-8)


@pytest.mark.parametrize("sr", [48000, 44100, 22050])
@pytest.mark.parametrize("amp", [1.0, 0.1, 0.001])
def test_sine_levels_in_closed_form(sr, amp):
    y = _sine(amp, sr)
    lv = levels(y, sr)
    # RMS of a sine = A / sqrt(2) (the 3 s hold a near-whole number of periods)
    assert lv["rms_dbfs"] == pytest.approx(20 * math.log10(amp / math.sqrt(2)), abs=0.01)
    assert lv["mean_abs"] == pytest.approx(2 * amp / math.pi, rel=1e-3)
    # BS.1770: a full-scale 1-kHz sine reads -3.01 LUFS (the K filter is ~0 dB near 1 kHz),
    # and loudness scales as 20 log10 of the amplitude; all blocks pass the gates.
    assert lv["lufs"] == pytest.approx(-3.01 + 20 * math.log10(amp), abs=0.05)


def test_gating_ignores_silence_and_silence_has_no_loudness():
    sr = 22050
    y = np.concatenate([_sine(0.5, sr, 2.0), np.zeros(4 * sr)])
    # Blocks start every 0.1 s: 17 lie inside the 2-s sine, 3 straddle its end (3/4, 1/2, 1/4 of
    # its power), 37 are silent and fall below the absolute gate. The relative gate (10 LU below
    # the mean of the 20) keeps all 20: loudness = sine + 10 log10(18.5 / 20). Ungated it would
    # be sine + 10 log10(1/3).
    sine = integrated_loudness(_sine(0.5, sr, 2.0), sr)
    assert integrated_loudness(y, sr) == pytest.approx(sine + 10 * math.log10(18.5 / 20), abs=0.01)
    assert integrated_loudness(np.zeros(sr), sr) is None
    assert levels(np.zeros(sr), sr)["rms_dbfs"] is None
    # shorter than one 400-ms block: one block, the whole clip
    assert integrated_loudness(_sine(1.0, sr, 0.2), sr) == pytest.approx(-3.0, abs=0.1)


def test_clip_row_flags():
    sr = 22050
    gt = levels(_sine(0.5, sr), sr)
    row = clip_row(levels(_sine(0.05, sr), sr), gt)
    assert row["rms_ratio_db"] == pytest.approx(-20.0, abs=1e-6)
    assert row["loudness_diff_lu"] == pytest.approx(-20.0, abs=1e-6)
    assert row["pred_quiet"] and not row["pred_silent"] and not row["pred_flat"] and not row["gt_silent"]
    assert not clip_row(levels(_sine(0.2, sr), sr), gt)["pred_quiet"]  # -8 dB: within range
    dc = clip_row(levels(np.full(sr, 0.3), sr), gt)  # a constant signal: loud, but flat
    assert dc["pred_flat"] and not dc["pred_silent"]
    silent = clip_row(levels(np.zeros(sr), sr), gt)
    assert silent["pred_silent"] and silent["pred_quiet"] and silent["rms_ratio_db"] is None


def test_envelope_spread_separates_same_from_different_outputs():
    sr = 22050
    a, b = _sine(0.3, sr) * np.linspace(0, 1, 3 * sr), _sine(0.3, sr) * np.linspace(1, 0, 3 * sr)
    assert envelope_spread([envelope(a, sr)] * 4) == pytest.approx(0.0, abs=1e-12)
    assert envelope_spread([envelope(a, sr), envelope(b, sr), envelope(a, sr)]) > 0.1
    assert envelope_spread([envelope(a, sr)]) is None


@pytest.fixture
def clicks(tmp_path):
    """Four gt click tracks (2 s, 22.05 kHz, float wav) at distinct onsets."""
    sr = 22050
    gts = {}
    for i in range(4):
        onsets = [0.25 + 0.1 * i, 0.9, 1.3 + 0.05 * i]
        y = click_track(onsets, sr=sr, duration=2.0, freq=800.0 + 100 * i, seed=i).astype(np.float64)
        gts[f"c{i}"] = y
        write_audio(tmp_path / "gt" / f"c{i}.wav", y, sr, subtype="FLOAT")
    return tmp_path, gts, sr


def test_near_silent_predictions_score_faithfully_and_are_flagged(clicks, cli):
    tmp, gts, sr = clicks
    # The diverged model of issue 14: the gt's own clicks at 1/100 of the level (-40 dB).
    for cid, y in gts.items():
        write_audio(tmp / "quiet" / f"{cid}.wav", 0.01 * y, sr, subtype="FLOAT")
        write_audio(tmp / "copy" / f"{cid}.wav", y, sr, subtype="FLOAT")
    loud = evaluate(tmp / "copy", tmp / "gt", protocol="d2m-aistpp-2s", workers=1, cache=False)
    quiet = evaluate(tmp / "quiet", tmp / "gt", protocol="d2m-aistpp-2s", workers=1, cache=False)
    for metric in ("beats_coverage", "beats_hit"):  # onset envelopes are normalised: values unchanged
        assert quiet.aggregate[metric]["value"] == loud.aggregate[metric]["value"] == 1.0
    rows = {r["id"]: r for r in quiet.per_clip}
    for cid, y in gts.items():
        assert rows[cid]["rms_ratio_db"] == pytest.approx(-40.0, abs=1e-4)
        assert rows[cid]["loudness_diff_lu"] == pytest.approx(-40.0, abs=1e-4)
        assert rows[cid]["pred_quiet"] is True
        rms = math.sqrt(np.mean(y ** 2))
        assert rows[cid]["gt_rms_dbfs"] == pytest.approx(20 * math.log10(rms), abs=1e-4)
    summary = quiet.sections["sanity"]["summary"]
    assert summary["median_rms_ratio_db"] == pytest.approx(-40.0, abs=1e-4)
    assert any("40.0 dB quieter than the gt" in w for w in quiet.warnings)
    assert not any("quieter" in w or "near-silent" in w for w in loud.warnings)
    assert loud.sections["sanity"]["summary"]["same_output_for_every_clip"] is False
    # the terminal table and the JSON carry the warning
    assert "warning: predictions are 40.0 dB quieter than the gt" in quiet.table()
    out = tmp / "r.json"
    proc = cli("eval", "--pred", tmp / "quiet", "--gt", tmp / "gt", "--out", out, "-q", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert any("dB quieter than the gt" in w for w in doc["warnings"])
    assert doc["sections"]["sanity"]["summary"]["n_pred_quiet"] == 4
    assert "dB quieter than the gt" in proc.stderr  # -q: warnings still reach the terminal


def test_silent_and_identical_predictions_are_flagged(clicks):
    tmp, gts, sr = clicks
    for cid in gts:
        write_audio(tmp / "same" / f"{cid}.wav", gts["c0"], sr, subtype="FLOAT")  # one output for every input
        write_audio(tmp / "silent" / f"{cid}.wav", np.zeros(2 * sr), sr, subtype="FLOAT")
    same = evaluate(tmp / "same", tmp / "gt", protocol="d2m-aistpp-2s", workers=1, cache=False)
    assert same.sections["sanity"]["summary"]["same_output_for_every_clip"] is True
    assert any("nearly the same signal" in w for w in same.warnings)
    silent = evaluate(tmp / "silent", tmp / "gt", protocol="d2m-aistpp-2s", workers=1, cache=False)
    assert silent.sections["sanity"]["summary"]["n_pred_silent"] == 4
    assert any(w.startswith("4 of 4 prediction(s) near-silent or constant") for w in silent.warnings)
    assert json.dumps(silent.to_dict(), allow_nan=False)  # no -inf for the silent levels
