"""`make bench`: d2m-bench eval against the published script's loop on 1,000 pairs of 2-s clips.

The reference does what Beats_Scores does: librosa.load both files, onset_detect each, one
process. Ours runs the faithful protocol with 2 workers, first with an empty cache (cold),
then again (warm). All three must give the same per-clip numbers.
Target: cold >= 1.8x the reference's throughput on 2 cores.
"""
import math
import time

import librosa
import numpy as np
import pytest
import soundfile as sf

from d2m_bench.evaluate import evaluate
from d2m_bench.synthetic import click_track, random_onsets

N_PAIRS = 1000
TIMES = {}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_eval")
    rng = np.random.default_rng(0)
    for i in range(N_PAIRS):
        for role in ("gt", "pred"):
            y = click_track(random_onsets(rng, 2.0, rate=2.0), noise=0.005, tone=float(rng.uniform(150, 600)), seed=i)
            (root / role).mkdir(exist_ok=True)
            sf.write(str(root / role / f"{i:04d}.wav"), y, 22050, subtype="PCM_16")
    return root


def reference_loop(root):
    cov, hit = [], []
    for i in range(N_PAIRS):
        bins = []
        for role in ("gt", "pred"):
            y, sr = librosa.load(str(root / role / f"{i:04d}.wav"))
            on = librosa.onset.onset_detect(y=y, sr=sr, units="time", wait=1, delta=0.2, pre_avg=1, post_avg=1, post_max=1)
            b = np.zeros(math.ceil(len(y) / sr), int)
            b[np.trunc(on).astype(int)] = 1
            bins.append(b)
        g, p = bins
        cov.append(p.sum() / g.sum())
        hit.append((g & p).sum() / g.sum())
    return cov, hit


def _timed(benchmark, name, fn):
    start = time.perf_counter()
    out = benchmark.pedantic(fn, rounds=1, iterations=1)
    TIMES[name] = time.perf_counter() - start
    benchmark.extra_info["pairs_per_s"] = N_PAIRS / TIMES[name]
    return out


def test_reference_script_loop(benchmark, clips):
    librosa.onset.onset_detect(y=np.zeros(22050, np.float32) + 1e-3, sr=22050)  # JIT outside the timing
    TIMES["ref_result"] = _timed(benchmark, "reference", lambda: reference_loop(clips))


def test_ours_cold_cache(benchmark, clips, tmp_path, monkeypatch):
    monkeypatch.setenv("D2M_BENCH_CACHE", str(tmp_path / "cache"))
    res = _timed(benchmark, "cold", lambda: evaluate(clips / "pred", clips / "gt", workers=2,
                                                     overrides={"genre.enabled": False}))
    TIMES["cache_dir"] = tmp_path / "cache"
    cov, hit = TIMES["ref_result"]
    assert [r["beats_coverage"] for r in res.per_clip] == cov
    assert [r["beats_hit"] for r in res.per_clip] == hit
    ratio = TIMES["reference"] / TIMES["cold"]
    print(f"\nreference {N_PAIRS / TIMES['reference']:.1f} pairs/s, ours cold {N_PAIRS / TIMES['cold']:.1f} pairs/s: {ratio:.2f}x")
    assert ratio >= 1.8


def test_ours_warm_cache(benchmark, clips, monkeypatch):
    monkeypatch.setenv("D2M_BENCH_CACHE", str(TIMES["cache_dir"]))
    res = _timed(benchmark, "warm", lambda: evaluate(clips / "pred", clips / "gt", workers=2,
                                                     overrides={"genre.enabled": False}))
    assert all(r["cached"] for r in res.per_clip)
    assert [r["beats_coverage"] for r in res.per_clip] == TIMES["ref_result"][0]
    print(f"\nours warm {N_PAIRS / TIMES['warm']:.1f} pairs/s: {TIMES['reference'] / TIMES['warm']:.2f}x the reference")


def test_cli_help_startup(benchmark):
    """`d2m-bench --help` must start in under 0.5 s: no librosa/torch on that path."""
    import subprocess
    import sys

    run = lambda: subprocess.run([sys.executable, "-m", "d2m_bench.cli", "--help"], capture_output=True, check=True)
    benchmark.pedantic(run, rounds=5, iterations=1)
    assert benchmark.stats.stats.max < 0.5
