"""`make bench`: cost of eval's sanity section (levels, BS.1770 loudness, envelopes), which decodes
every prediction and gt once more. 86 pairs of 2-s 22.05-kHz wavs (the D2M-GAN AIST++ test
set's shape) and 200 pairs of 6-s 44.1-kHz stereo wavs. Target: under 25 ms per second of
audio in a pair (decoding both files, K-weighting, envelopes), so that it stays a small part of
eval's own time (onset detection on the same pair).
Measured on the shared 2-core machine with other jobs running: 19 ms/s (2-s mono, 39 ms per
pair), 5 ms/s (6-s stereo); a 2-s pair alone costs about 12 ms (two decodes, two 5-ms levels)."""
import time

import numpy as np
import pytest

from d2m_bench.io.audio import write_audio
from d2m_bench.io.pairing import Pair
from d2m_bench.sections.sanity import sanity_section


def _pairs(root, n, sr, seconds, channels):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        for side in ("gt", "pred"):
            y = 0.1 * rng.normal(size=(channels, int(sr * seconds)))
            write_audio(root / side / f"c{i}.wav", y if channels > 1 else y[0], sr)
        out.append(Pair(f"c{i}", root / "gt" / f"c{i}.wav", root / "pred" / f"c{i}.wav"))
    return out


@pytest.mark.parametrize("n,sr,seconds,channels", [(86, 22050, 2.0, 1), (200, 44100, 6.0, 2)])
def test_sanity_section_cost(benchmark, tmp_path, n, sr, seconds, channels):
    pairs = _pairs(tmp_path, n, sr, seconds, channels)
    start = time.perf_counter()
    res = benchmark.pedantic(sanity_section, args=(pairs,), rounds=1, iterations=1)
    per_pair = (time.perf_counter() - start) / n
    print(f"\nsanity: {n} pairs of {seconds:g} s at {sr} Hz x{channels}: {1000 * per_pair:.1f} ms per pair, "
          f"{1000 * per_pair / seconds:.1f} ms per second of audio")
    benchmark.extra_info.update(ms_per_pair=1000 * per_pair)
    assert res["summary"]["n"] == n
    assert per_pair / seconds < 0.025
