"""Issue 24 rows 13-16: inputs too large or too alike, a corrupt selftest file, the cache's
tamper warning."""
import os
import struct
import unicodedata

import numpy as np
import pytest
import soundfile as sf

from d2m_bench_tests.helpers import cache_entries, read_cache_entry, write_cache_entry, write_click_pairs


def _long_wav(path, seconds, sr=22050):
    """A mono 16-bit WAV whose header declares ``seconds`` of audio, as a sparse file (no disk
    used for the silence): what a 2-hour recording looks like to eval."""
    n = int(seconds * sr)
    header = (b"RIFF" + struct.pack("<I", 36 + 2 * n) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, 2 * sr, 2, 16)
              + b"data" + struct.pack("<I", 2 * n))
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + 2 * n)
    return path


def test_a_two_hour_prediction_is_refused_before_decoding(tmp_path, cli):
    """Row 13: a 2-hour wav took 5.7 GB to decode, then a MemoryError traceback under 4 GB."""
    write_click_pairs(tmp_path, ["c0", "c1"])
    _long_wav(tmp_path / "pred" / "c1.wav", 2 * 3600)
    from d2m_bench_tests.helpers import run_python

    code = ("import sys; from d2m_bench.cli import main; sys.argv = ['d2m-bench', *sys.argv[1:]]; "
            "sys.exit(main())")
    proc = run_python(code, "eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-q", "-j", "1",
                      "--no-cache", limit_bytes=3 * 2**30)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "c1.wav" in lines[0] and "7200.0 s" in lines[0] and "audio.max_seconds" in lines[0]


def test_max_seconds_is_an_optional_protocol_key(tmp_path, cli):
    """audio.max_seconds: absent = 10 minutes (so shipped protocols keep their hash), settable."""
    from d2m_bench.protocol import load_protocol

    shipped = load_protocol("d2m-aistpp-2s")
    assert "max_seconds" not in shipped.params["audio"]
    from pathlib import Path

    text = Path(shipped.source).read_text()
    proto = tmp_path / "p.toml"
    proto.write_text(text.replace("[audio]\n", "[audio]\nmax_seconds = 1.5\n", 1))
    write_click_pairs(tmp_path, ["c0"])  # 2-s clips
    proc = cli("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-p", proto, "-q", "--no-cache")
    assert proc.returncode == 2 and "audio.max_seconds = 1.5" in proc.stderr and proc.stderr.count("\n") == 1
    proto.write_text(text.replace("[audio]\n", "[audio]\nmax_seconds = nan\n", 1))
    proc = cli("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-p", proto, "-q")
    assert proc.returncode == 2 and "audio.max_seconds" in proc.stderr


@pytest.mark.parametrize("change", ["nfd", "case"])
def test_ids_that_differ_only_by_normalisation_or_case_get_a_hint(tmp_path, change):
    """Row 14: gt names in NFC and pred in NFD (or another case): every id extra and missing, no hint."""
    from d2m_bench.errors import UserError
    from d2m_bench.io.pairing import pair_directories

    names = [unicodedata.normalize("NFC", f"caf\u00e9_{i}") for i in range(3)]
    for name in names:
        for side in ("gt", "pred"):
            stem = name if side == "gt" else (unicodedata.normalize("NFD", name) if change == "nfd" else name.upper())
            (tmp_path / side).mkdir(exist_ok=True)
            sf.write(str(tmp_path / side / f"{stem}.wav"), np.zeros(100, "float32"), 22050)
    with pytest.raises(UserError) as err:
        pair_directories(tmp_path / "gt", tmp_path / "pred")
    msg = str(err.value)
    want = "Unicode normalisation" if change == "nfd" else "case"
    assert "\n" not in msg and "hint: 3 of them differ only by " + want in msg, msg


@pytest.mark.parametrize("body,needle", [
    ('{"cases": {"beats-d2m": {"aggregate": {"beats_hit": NaN}}}}', "NaN is not an expected value"),
    ('{"cases": {"beats-d2m": {"per_clip": NaN}}}', "NaN is not an expected value"),
    ('{"cases": {"beats-d2m": {"per_clip": [1, 2]}}}', "cases.beats-d2m.per_clip: not an object"),
    ('{"cases": {"beats-d2m": {"aggregate": {"beats_hit": "0.5"}}}}', "cases.beats-d2m.aggregate.beats_hit"),
])
def test_selftest_with_a_corrupt_expected_file_is_one_line(tmp_path, cli, body, needle):
    """Row 15: an expected.json holding a NaN gave an AttributeError traceback."""
    path = tmp_path / "expected.json"
    path.write_text(body)
    proc = cli("selftest", "--expected", path, "-q")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
    assert str(path) in proc.stderr


def test_the_tamper_warning_of_the_cache_is_shown(tmp_path, cli):
    """Row 16: a tampered cache entry was recomputed, but the documented warning appeared nowhere."""
    write_click_pairs(tmp_path, ["c0"])
    env = {**os.environ, "D2M_BENCH_CACHE": str(tmp_path / "cache")}
    from d2m_bench_tests.conftest import run_cli

    args = ("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-q", "-j", "1")
    assert run_cli(*args, env=env).returncode == 0
    entries = cache_entries(tmp_path / "cache")
    assert entries
    for p in entries:
        data, check = read_cache_entry(p)
        data[-1] += 0.25  # an onset moved by hand: the integrity check fails
        write_cache_entry(p, data, check)
    proc = run_cli(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "cache entry not used" in ln]
    assert lines and lines[0].startswith("d2m-bench: warning: ") and "integrity check failed" in lines[0], proc.stderr
