"""Build speed of the AIST++ builder on the synthetic raw set, extrapolated to one hour of video.

The synthetic videos are 64x64, so this measures the builder's own overhead (pickles,
Rodrigues, audio cut/resample, flow on a 128-px grid, writes); decoding real 1080p60 video
adds to it. Run: .venv/bin/python -m pytest d2m_bench_tests/benchmarks/bench_data.py --benchmark-only -s
"""
import shutil

from d2m_bench.data.aistpp import build_aistpp
from d2m_bench.data.synth import synth_aistpp
from d2m_bench.dataset import Dataset


def test_build_aistpp_speed(benchmark, tmp_path):
    raw = synth_aistpp(tmp_path / "raw", n_train=6, n_test=4, segments=(6, 4, 5))
    out = tmp_path / "ds"

    def build():
        shutil.rmtree(out, ignore_errors=True)
        return build_aistpp(raw / "annotations", out, music=raw / "music", videos=raw / "videos", workers=2)

    benchmark.pedantic(build, rounds=3, iterations=1)
    segs = Dataset(out).segments()
    video_s = sum(s.end_s - s.start_s for s in segs)
    per_hour = benchmark.stats.stats.mean * 3600 / video_s
    print(f"\nbuilt {len(segs)} segments = {video_s:.0f} s of video in {benchmark.stats.stats.mean:.2f} s "
          f"(2 workers) -> {per_hour / 60:.1f} min per hour of video")
    assert len(segs) > 0
