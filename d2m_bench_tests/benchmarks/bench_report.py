"""Report speed: 1,000 clips, 50 per-clip figures (20 worst, 20 best, 10 random), 2 worker
processes. Target: under 30 s on 2 cores. The result is synthetic (quantised 2-s scores,
onset times, an alignment section) with every clip's audio pointing at one 2-s wav, so the
run measures the report alone: nothing is recomputed from audio (no --envelopes).
Run: .venv/bin/python -m pytest d2m_bench_tests/benchmarks/bench_report.py --benchmark-only -s
"""
import json
import time

import numpy as np
import pytest

from d2m_bench.results.intervals import mean_ci

N_CLIPS = 1000
TARGET_S = 30.0


def synthetic_result(tmp_path, n=N_CLIPS, seed=0):
    import soundfile as sf

    rng = np.random.default_rng(seed)
    wav = tmp_path / "clip.wav"
    sf.write(wav, rng.normal(0, 0.1, 44100).astype("float32"), 22050)
    rows = []
    for i in range(n):
        gt = np.sort(rng.uniform(0, 2, rng.integers(1, 8))).tolist()
        pred = np.sort(rng.uniform(0, 2, rng.integers(0, 8))).tolist()
        gb, pb = {int(t) for t in gt}, {int(t) for t in pred}
        rows.append({"id": f"clip{i:04d}", "gt": str(wav), "pred": str(wav), "gt_samples": 44100, "pred_samples": 44100,
                     "gt_events": gt, "pred_events": pred, "gt_bins": len(gb), "pred_bins": len(pb),
                     "hit_bins": len(gb & pb), "beats_coverage": len(pb) / len(gb), "beats_hit": len(gb & pb) / len(gb),
                     "kinematic_beat_frames_fact": sorted(rng.choice(120, 4, replace=False).tolist()),
                     "music_beat_frames": sorted(rng.choice(120, 3, replace=False).tolist()),
                     "music_beat_frames_gt": sorted(rng.choice(120, 3, replace=False).tolist()),
                     "beat_align_fact": float(rng.uniform())})
    agg = {}
    for m in ("beats_coverage", "beats_hit", "beat_align_fact"):
        vals = [r[m] for r in rows]
        agg[m] = {"value": float(np.mean(vals)), "n": n, "unit": "fraction", "higher_is_better": True,
                  "ci": mean_ci(vals), "ci_column": m}
    doc = {"tool": "d2m-bench", "complete": True, "system": "bench", "aggregate": agg, "per_clip": rows,
           "protocol": {"name": "d2m-aistpp-2s", "hash": "0" * 64,
                        "params": {"audio": {"sample_rate": 22050}, "beats": {"variant": "d2m", "bin_seconds": 1.0},
                                   "alignment": {"fps": 60.0}}},
           "excluded": {"count": 0, "clips": []}, "sections": {}}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(doc))
    return path


def test_report_1000_clips_50_figures(benchmark, tmp_path):
    pytest.importorskip("matplotlib")
    from d2m_bench.report import build_report

    result = synthetic_result(tmp_path)
    runs = []

    def run():
        t0 = time.perf_counter()
        index = build_report([result], tmp_path / f"rep{len(runs)}", worst=20, best=20, random=10, workers=2)
        runs.append(time.perf_counter() - t0)
        return index

    index = benchmark.pedantic(run, rounds=2, iterations=1)
    assert len(list(index.parent.glob("img/*-clip-*.png"))) == 50
    print(f"\nreport over {N_CLIPS} clips, 50 per-clip figures: {min(runs):.1f} s (target < {TARGET_S:.0f} s)")
    assert min(runs) < TARGET_S


def test_fad_interval_and_fad_inf_1000_clips(benchmark):
    """What the genre section adds to FAD for 1,000 2-s clips of VGGish size (2 examples x 128
    dims a side): 200 bootstrap FADs, 1,000 leave-one-out FADs (BCa), 10 FAD-inf subsets."""
    from d2m_bench.results.intervals import fad_extras

    rng = np.random.default_rng(0)
    pred = [rng.normal(size=(2, 128)) for _ in range(N_CLIPS)]
    gt = [rng.normal(0.1, 1.0, size=(2, 128)) for _ in range(N_CLIPS)]
    out = benchmark.pedantic(fad_extras, args=(pred, gt, None), rounds=1, iterations=1)
    assert out["ci"]["n_resamples"] == 200 and len(out["fad_inf"]["sizes"]) == 10
