"""Length rule (issue 12, item 2): the faithful variants score each file as loaded wherever the
published script runs; the protocol's length policy acts only where the script would stop,
and each row says whether and why. Judged by the literal ports in helpers.py."""
import pytest
import soundfile as sf

from d2m_bench.errors import UserError
from d2m_bench.evaluation import evaluate
from d2m_bench.io.lengths import policy_reason
from d2m_bench.synth.synthetic import click_track
from d2m_bench_tests.helpers import d2m_script, loris_script

SR = 22050


def write(path, y):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, SR, subtype="PCM_16")
    return path


def test_short_prediction_is_not_padded_before_detection(tmp_path):
    # A sustained tone cut off at 43008 samples: zero-padding it to 44100 before detection gives
    # the cut-off a click onset at 1.97 s (old code: 1.0 / 1.0); the published script scores the
    # file as it is, 2 bins against 2: 0.5 / 0.5.
    write(tmp_path / "gt" / "a.wav", click_track([0.3, 1.3]))
    write(tmp_path / "pred" / "a.wav", click_track([0.4], tone=220.0, duration=43008 / SR))
    ref = d2m_script(tmp_path / "gt", tmp_path / "pred")
    assert ref == [(0.5, 0.5)]
    res = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    row = res.per_clip[0]
    assert (row["beats_coverage"], row["beats_hit"]) == ref[0]
    assert row["length_action"] == "none" and row["length_reason"] is None
    assert row["pred_loaded_samples"] == row["pred_samples"] == 43008 and row["gt_samples"] == 44100

    # LORIS: the literal script runs too (2 bins each)
    ref = loris_script([(tmp_path / "gt" / "a.wav", tmp_path / "pred" / "a.wav")])
    res = evaluate(tmp_path / "pred", tmp_path / "gt", protocol="loris", workers=1)
    assert [(r["loris_coverage"], r["loris_hit"]) for r in res.per_clip] == ref

    # tolerance keeps the policy as configured (before detection): the padded tail's onset counts
    res = evaluate(tmp_path / "pred", tmp_path / "gt", protocol="tolerance", workers=1)
    row = res.per_clip[0]
    assert row["length_action"] == "padded 1092" and row["pred_samples"] == 44100
    assert row["length_reason"] == "lengths differ (43008 vs 44100 samples)"
    assert row["est_events"] == 2


def test_longer_prediction_keeps_its_onset_past_the_gt_end(tmp_path):
    # gt 2.5 s (3 bins), prediction 2.99 s (3 bins): the script runs, and the onset at 2.508 s
    # falls in bin 2. Trimming the prediction to 2.5 s first (old code) lost it: 2/3 instead of 1.
    write(tmp_path / "gt" / "a.wav", click_track([0.3, 1.3, 2.2], duration=2.5))
    write(tmp_path / "pred" / "a.wav", click_track([0.35, 1.35, 2.508], duration=2.99))
    ref = d2m_script(tmp_path / "gt", tmp_path / "pred")
    assert ref == [(1.0, 1.0)]
    row = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1).per_clip[0]
    assert (row["beats_coverage"], row["beats_hit"]) == ref[0]
    assert row["length_action"] == "none" and row["pred_samples"] == row["pred_loaded_samples"] == round(2.99 * SR)

    # LORIS runs as well (3 bins each)
    ref = loris_script([(tmp_path / "gt" / "a.wav", tmp_path / "pred" / "a.wav")])
    res = evaluate(tmp_path / "pred", tmp_path / "gt", protocol="loris", workers=1)
    assert [(r["loris_coverage"], r["loris_hit"]) for r in res.per_clip] == ref


def test_policy_acts_only_where_the_script_would_stop(tmp_path):
    # 45056 samples (3 bins) against 44100 (2 bins): Beats_Scores asserts; pred_to_gt trims
    write(tmp_path / "gt" / "a.wav", click_track([0.3, 1.3]))
    write(tmp_path / "pred" / "a.wav", click_track([0.3, 1.3, 2.01], duration=45056 / SR))
    with pytest.raises(AssertionError):
        d2m_script(tmp_path / "gt", tmp_path / "pred")
    row = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1).per_clip[0]
    assert row["length_action"] == "trimmed 956" and row["pred_samples"] == 44100
    assert row["pred_loaded_samples"] == 45056
    assert row["length_reason"].startswith("bin counts differ (3 vs 2)")
    assert (row["beats_coverage"], row["beats_hit"]) == (1.0, 1.0)
    with pytest.raises(UserError, match="one-second bins"):
        evaluate(tmp_path / "pred", tmp_path / "gt", workers=1, overrides={"audio.length_policy": "strict"})
    row = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1, overrides={"audio.length_policy": "min"}).per_clip[0]
    assert row["length_action"] == "both trimmed to 44100"

    # LORIS asserts too (3 pred bins, 2 gt bins); its protocol's policy "none" drops the extra bin
    with pytest.raises(AssertionError):
        loris_script([(tmp_path / "gt" / "a.wav", tmp_path / "pred" / "a.wav")])
    row = evaluate(tmp_path / "pred", tmp_path / "gt", protocol="loris", workers=1).per_clip[0]
    assert row["length_action"] == "pred bins truncated 3->2" and row["length_reason"].startswith("prediction has more bins")
    with pytest.raises(UserError, match="LORIS"):
        evaluate(tmp_path / "pred", tmp_path / "gt", protocol="loris", workers=1,
                 overrides={"audio.length_policy": "strict"})


def test_loris_shorter_prediction_is_scored_as_loaded(tmp_path):
    # 1.5-s prediction (2 bins) against a 3-s gt (3 bins): LORIS cuts the gt bins and runs
    write(tmp_path / "gt" / "a.wav", click_track([0.3, 1.3, 2.3], duration=3.0))
    write(tmp_path / "pred" / "a.wav", click_track([0.3], tone=220.0, duration=1.5))
    ref = loris_script([(tmp_path / "gt" / "a.wav", tmp_path / "pred" / "a.wav")])
    row = evaluate(tmp_path / "pred", tmp_path / "gt", protocol="loris", workers=1).per_clip[0]
    assert (row["loris_coverage"], row["loris_hit"]) == ref[0]
    assert row["length_action"] == "none" and row["pred_samples"] == round(1.5 * SR)


def test_policy_reason_rules():
    assert policy_reason("d2m", 44100, 44032, SR) is None
    assert policy_reason("d2m", 44100, 43008, SR) is None
    assert policy_reason("d2m", 44100, 44101, SR).startswith("bin counts differ (3 vs 2)")
    assert policy_reason("d2m", 44100, 22050, SR).startswith("bin counts differ (1 vs 2)")
    assert policy_reason("loris", 44100, 22050, SR) is None
    assert policy_reason("loris", 44100, 44101, SR).startswith("prediction has more bins")
    assert policy_reason("tolerance", 44100, 44100, SR) is None
    assert policy_reason("tolerance", 44100, 44099, SR) == "lengths differ (44099 vs 44100 samples)"
    # bins of another width (protocol beats.bin_seconds)
    assert policy_reason("d2m", 44100, 40000, SR, bin_seconds=2.0) is None
    assert policy_reason("d2m", 44100, 44101, SR, bin_seconds=2.0) is not None
