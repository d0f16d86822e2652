"""The whole `d2m-bench eval` path on synthetic clips with known onsets."""
import glob
import json
import math
import os

import librosa
import numpy as np
import pytest
import soundfile as sf

from d2m_bench.evaluation import evaluate
from d2m_bench.metrics.beats import onset_times
from d2m_bench.synth.synthetic import click_track, random_onsets

SR = 22050


def write(path, y, sr=SR, subtype="PCM_16"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, sr, subtype=subtype)
    return path


def upstream_reference(ref_dir, syn_dir):
    """What the published Beats_Scores script computes, written out independently:
    sorted-glob pairing, librosa.load defaults, onset_detect with the published arguments,
    whole-second bins, per-clip B_g/B_t and B_a/B_t, plain mean."""
    refs, syns = sorted(glob.glob(f"{ref_dir}/*")), sorted(glob.glob(f"{syn_dir}/*"))
    cov, hit = [], []
    for r, s in zip(refs, syns):
        per = []
        for f in (r, s):
            y, sr = librosa.load(f)
            on = librosa.onset.onset_detect(y=y, sr=sr, units="time", wait=1, delta=0.2, pre_avg=1, post_avg=1, post_max=1)
            b = [0] * math.ceil(len(y) / sr)
            for t in on:
                b[int(t)] = 1
            per.append(b)
        g, p = per
        assert len(g) == len(p)
        total = sum(g)
        cov.append(sum(p) / total)
        hit.append(sum(1 for a, b in zip(g, p) if a == 1 and b == 1) / total)
    return cov, hit


def test_onsets_identical_to_published_call():
    rng = np.random.default_rng(0)
    for i in range(60):
        dur = (2.0, 2.0, 6.0, 44032 / SR)[i % 4]
        y = click_track(random_onsets(rng, dur), duration=dur, noise=0.01 * (i % 3), tone=220.0 if i % 2 else None, seed=i)
        if i % 5 == 0:
            y = (y + rng.normal(0, 0.3, len(y))).astype(np.float32)  # dense, noisy envelope
        ours = onset_times(y, sr=SR)
        theirs = librosa.onset.onset_detect(y=y, sr=SR, units="time", wait=1, delta=0.2, pre_avg=1, post_avg=1, post_max=1)
        assert np.array_equal(ours, theirs)
        from d2m_bench.metrics.beats import onset_envelope

        assert np.array_equal(onset_envelope(y, sr=SR), librosa.onset.onset_strength(y=y, sr=SR))
    # Evaluation runs BLAS single-threaded; librosa's own envelope then differs in the last
    # bits from a multi-threaded run, but no onset time moves.
    from threadpoolctl import threadpool_limits

    for i in range(40):
        y = (click_track(random_onsets(rng, 2.0), noise=0.01, seed=i) + rng.normal(0, 0.1 * (i % 4), 44100)).astype(np.float32)
        with threadpool_limits(max(2, os.cpu_count() or 2)):  # the suite runs one thread per process (conftest)
            multi = librosa.onset.onset_detect(y=y, sr=SR, units="time", wait=1, delta=0.2, pre_avg=1, post_avg=1,
                                               post_max=1)
        with threadpool_limits(1):
            assert np.array_equal(onset_times(y, sr=SR), multi)
    # LORIS parameters too
    y = click_track(random_onsets(rng, 2.0), noise=0.02)
    assert np.array_equal(onset_times(y, sr=SR, pre_max=3, post_max=3, pre_avg=3, post_avg=3),
                          librosa.onset.onset_detect(y=y, sr=SR, units="time", wait=1, delta=0.2, pre_avg=3,
                                                     post_avg=3, pre_max=3, post_max=3))


def test_matches_upstream_script_per_clip(tmp_path):
    rng = np.random.default_rng(3)
    for i in range(12):
        dur = 6.0 if i < 3 else 2.0  # include 6-s clips like the upstream fixtures
        gt_on = random_onsets(rng, dur, rate=1.0, min_gap=0.3)
        pred_on = random_onsets(rng, dur, rate=1.0, min_gap=0.3)
        write(tmp_path / "ref" / f"c{i:02d}.wav", click_track(gt_on, duration=dur, noise=0.003, seed=i))
        # 44032-sample predictions, as the high-level D2M-GAN model writes
        n = 132224 if dur == 6.0 else 44032
        write(tmp_path / "syn" / f"c{i:02d}.wav", click_track(pred_on, duration=dur, noise=0.003, seed=50 + i)[:n])
    cov, hit = upstream_reference(tmp_path / "ref", tmp_path / "syn")
    res = evaluate(tmp_path / "syn", tmp_path / "ref", protocol="d2m-aistpp-2s", workers=2)
    assert [r["beats_coverage"] for r in res.per_clip] == cov
    assert [r["beats_hit"] for r in res.per_clip] == hit
    assert res.aggregate["beats_coverage"]["value"] == pytest.approx(np.mean(cov), abs=1e-15)
    assert res.aggregate["beats_hit"]["value"] == pytest.approx(np.mean(hit), abs=1e-15)


def test_known_clicks_through_cli(tmp_path, cli):
    # gt clicks in seconds 0 and 1; pred A clicks only in second 0 -> coverage .5, hit .5;
    # pred B clicks in second 1 twice and never in second 0 -> coverage .5, hit .5;
    # pred C fills both -> 1, 1; pred D: gt with one click in second 0, pred in both -> coverage 2
    cases = {"a": ([0.25, 1.25], [0.3, 0.7]), "b": ([0.25, 1.25], [1.2, 1.6]),
             "c": ([0.25, 1.25], [0.4, 1.4]), "d": ([0.4], [0.3, 1.3])}
    for cid, (g, p) in cases.items():
        write(tmp_path / "gt" / f"{cid}.wav", click_track(g))
        write(tmp_path / "pred" / f"{cid}.wav", click_track(p))
    out = tmp_path / "r.json"
    proc = cli("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    got = {r["id"]: (r["beats_coverage"], r["beats_hit"]) for r in doc["per_clip"]}
    assert got == {"a": (0.5, 0.5), "b": (0.5, 0.5), "c": (1.0, 1.0), "d": (2.0, 1.0)}
    agg = doc["aggregate"]
    assert agg["beats_coverage"]["value"] == pytest.approx((0.5 + 0.5 + 1 + 2) / 4)
    assert agg["beats_hit"]["value"] == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)
    # pooled: sum B_g / sum B_t = (1+1+2+2)/(2+2+2+1); sum B_a / sum B_t = (1+1+2+1)/7
    assert agg["beats_coverage"]["pooled"] == pytest.approx(6 / 7)
    assert agg["beats_hit"]["pooled"] == pytest.approx(5 / 7)
    assert agg["beats_coverage"]["distribution"] == [{"value": 0.5, "count": 2}, {"value": 1.0, "count": 1},
                                                     {"value": 2.0, "count": 1}]
    assert agg["beats_coverage"]["capped_mean"] == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)
    assert doc["protocol"]["name"] == "d2m-aistpp-2s" and len(doc["protocol"]["hash"]) == 64
    assert doc["versions"]["librosa"] == librosa.__version__ and doc["complete"] is True


def test_detected_onsets_sit_on_the_clicks():
    clicks = [0.3, 0.75, 1.2, 1.65]
    t = onset_times(click_track(clicks), sr=SR)
    assert len(t) == len(clicks)
    assert np.max(np.abs(t - clicks)) <= 2 * 512 / SR  # within two analysis frames


def test_loris_variant(tmp_path):
    # gt clicks in both seconds, pred only in second 0: B_a=1, B_g=1, B_t=2 -> P 1, R .5
    write(tmp_path / "gt" / "x.wav", click_track([0.3, 1.3]))
    write(tmp_path / "pred" / "x.wav", click_track([0.5]))
    write(tmp_path / "gt" / "y.wav", click_track([0.3, 1.3]))
    write(tmp_path / "pred" / "y.wav", click_track([0.3, 1.3]))
    res = evaluate(tmp_path / "pred", tmp_path / "gt", protocol="loris", workers=1)
    assert res.aggregate["loris_coverage"]["value"] == pytest.approx(1.0)
    assert res.aggregate["loris_hit"]["value"] == pytest.approx(0.75)
    assert res.aggregate["loris_f1"]["value"] == pytest.approx(2 * 0.75 / 1.75)
    assert res.aggregate["loris_hit"]["std"] == pytest.approx(np.std([0.5, 1.0], ddof=1))


def test_tolerance_variant_onsets_and_beats(tmp_path):
    g = [0.3, 0.8, 1.3, 1.8]
    write(tmp_path / "gt" / "x.wav", click_track(g))
    write(tmp_path / "pred" / "x.wav", click_track([0.31, 0.8 + 0.15, 1.29]))  # 0.95 is 150 ms off
    res = evaluate(tmp_path / "pred", tmp_path / "gt", protocol="tolerance", workers=1)
    row = res.per_clip[0]
    assert (row["ref_events"], row["est_events"], row["matched"]) == (4, 3, 2)
    assert res.aggregate["onset_precision"]["value"] == pytest.approx(2 / 3)
    assert res.aggregate["onset_recall"]["value"] == pytest.approx(2 / 4)
    # beat-tracker events are a recorded protocol choice with their own metric names
    res_b = evaluate(tmp_path / "pred", tmp_path / "gt", protocol="tolerance", workers=1,
                     overrides={"beats.events": "beat"})
    assert "beat_f_measure" in res_b.aggregate and res_b.protocol.hash != res.protocol.hash
    assert res_b.protocol.name == "tolerance+beats.events=beat"


def test_gt_without_onset_is_excluded_and_listed(tmp_path, cli):
    write(tmp_path / "gt" / "quiet.wav", np.zeros(2 * SR, np.float32))
    write(tmp_path / "pred" / "quiet.wav", click_track([0.5]))
    write(tmp_path / "gt" / "ok.wav", click_track([0.5, 1.5]))
    write(tmp_path / "pred" / "ok.wav", click_track([0.5]))
    out = tmp_path / "r.json"
    proc = cli("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--out", out)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["excluded"]["count"] == 1 and doc["excluded"]["clips"][0]["id"] == "quiet"
    assert doc["aggregate"]["beats_coverage"]["n"] == 1
    assert doc["aggregate"]["beats_coverage"]["value"] == 0.5
    quiet = next(r for r in doc["per_clip"] if r["id"] == "quiet")
    assert quiet["gt_bins"] == 0 and quiet["beats_coverage"] is None
    assert "excluded quiet" in proc.stdout


def test_length_policy_trims_and_pads_pred_and_records_it(tmp_path):
    write(tmp_path / "gt" / "a.wav", click_track([0.3, 1.3]))
    write(tmp_path / "pred" / "a.wav", click_track([0.3, 1.3, 2.4], duration=45056 / SR))  # AAC-like padding
    write(tmp_path / "gt" / "b.wav", click_track([0.3, 1.3]))
    write(tmp_path / "pred" / "b.wav", click_track([0.3, 1.3])[:44032])
    res = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    rows = {r["id"]: r for r in res.per_clip}
    assert rows["a"]["length_action"] == "trimmed 956" and rows["a"]["pred_samples"] == 44100
    # 44032 samples: 2 bins like the gt, so the published script runs and the file is scored as is
    assert rows["b"]["length_action"] == "none" and rows["b"]["pred_samples"] == 44032
    assert rows["a"]["beats_coverage"] == 1.0  # the onset at 2.4 s was cut with the padding
    # the upstream assert, as a protocol choice: a 3-bin prediction against a 2-bin gt is an error
    from d2m_bench.errors import UserError

    with pytest.raises(UserError, match="one-second bins"):
        evaluate(tmp_path / "pred", tmp_path / "gt", workers=1, overrides={"audio.length_policy": "strict"})


def test_resampling_and_stereo_match_librosa_load(tmp_path):
    y = np.stack([click_track([0.3, 1.1], sr=44100), click_track([0.6], sr=44100)], axis=1)
    path = write(tmp_path / "s.wav", y, sr=44100, subtype="FLOAT")
    from d2m_bench.io.audio import load_audio

    ours, sr = load_audio(path, 22050)
    ref, _ = librosa.load(path)
    assert sr == 22050 and np.array_equal(ours, ref)


def test_video_container_audio_track(tmp_path):
    av = pytest.importorskip("av")
    y = click_track([0.3, 1.3])
    path = tmp_path / "pred" / "v.mp4"
    path.parent.mkdir()
    with av.open(str(path), "w") as c:
        stream = c.add_stream("aac", rate=SR)
        stream.layout = "mono"
        frame_len = 1024
        for i in range(0, len(y), frame_len):
            chunk = y[i:i + frame_len]
            frame = av.AudioFrame.from_ndarray(chunk[None, :].astype(np.float32), format="fltp", layout="mono")
            frame.sample_rate = SR
            frame.pts = i
            for p in stream.encode(frame):
                c.mux(p)
        for p in stream.encode(None):
            c.mux(p)
    write(tmp_path / "gt" / "v.wav", y)
    res = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    row = res.per_clip[0]
    assert row["pred_native_samples"] == 44100  # AAC priming and frame padding removed, as ffmpeg does
    assert row["pred_samples"] == 44100 and row["beats_hit"] == 1.0 and row["length_action"] == "none"


def test_cache_hit_and_invalidation(tmp_path):
    write(tmp_path / "gt" / "a.wav", click_track([0.3, 1.3]))
    write(tmp_path / "pred" / "a.wav", click_track([0.3]))
    first = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    again = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    assert first.per_clip[0]["cached"] is False and again.per_clip[0]["cached"] is True
    assert again.per_clip[0]["beats_coverage"] == first.per_clip[0]["beats_coverage"] == 0.5
    write(tmp_path / "pred" / "a.wav", click_track([0.35, 1.3]))  # new content, same name (not the gt's bytes)
    changed = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    assert changed.per_clip[0]["cached"] is False and changed.per_clip[0]["beats_coverage"] == 1.0
    off = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1, cache=False)
    assert off.per_clip[0]["cached"] is False


def test_parallel_equals_serial(tmp_path):
    rng = np.random.default_rng(5)
    for i in range(10):
        write(tmp_path / "gt" / f"{i}.wav", click_track(random_onsets(rng, 2.0, rate=1.0)))
        write(tmp_path / "pred" / f"{i}.wav", click_track(random_onsets(rng, 2.0, rate=1.0)))
    a = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1, cache=False)
    b = evaluate(tmp_path / "pred", tmp_path / "gt", workers=2, cache=False)
    assert [r["id"] for r in a.per_clip] == [r["id"] for r in b.per_clip] == [str(i) for i in range(10)]
    assert a.aggregate == b.aggregate
