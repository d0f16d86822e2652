"""Build speed of the AIST++ builder on the synthetic raw set, per hour of input video.

"Input video" is the full length of every source video, remainders the 2-s windows drop
included (what a user has to process), not just the time the built segments cover.
The synthetic videos are 64x64, so this measures the builder's own overhead (pickles,
Rodrigues, audio cut/resample, flow on a 128-px grid, writes); decoding real 1080p60 video
adds to it. Run: .venv/bin/python -m pytest d2m_bench_tests/benchmarks/bench_data.py --benchmark-only -s
"""
import shutil

from d2m_bench.data.aistpp import build_aistpp
from d2m_bench.data.synth import synth_aistpp
from d2m_bench.data.video import probe
from d2m_bench.data.dataset import Dataset


def test_build_aistpp_speed(benchmark, tmp_path):
    raw = synth_aistpp(tmp_path / "raw", n_train=6, n_test=4, segments=(6, 4, 5))
    out = tmp_path / "ds"

    def build():
        shutil.rmtree(out, ignore_errors=True)
        return build_aistpp(raw / "annotations", out, music=raw / "music", videos=raw / "videos", workers=2)

    benchmark.pedantic(build, rounds=3, iterations=1)
    segs = Dataset(out).segments()
    built_s = sum(s.end_s - s.start_s for s in segs)
    input_s = sum(probe(p).duration for p in (raw / "videos").glob("*.mp4"))
    assert len(list((raw / "videos").glob("*.mp4"))) == len({s.sequence for s in segs})  # every video built
    per_hour = benchmark.stats.stats.mean * 3600 / input_s
    print(f"\n{input_s:.1f} s of input video ({built_s:.0f} s in {len(segs)} segments) built in "
          f"{benchmark.stats.stats.mean:.2f} s (2 workers) -> {per_hour / 60:.1f} min per hour of input video")
