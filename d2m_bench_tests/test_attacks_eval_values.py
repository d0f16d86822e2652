"""Issue 13, failures 7 and 11 (workers): eval protocol values that are not finite or out of
range ran the whole evaluation and then died with a traceback; -j 1000 started ~1000 processes."""
import os
import re
from pathlib import Path

import pytest

from d2m_bench.resources import shipped_dir
from d2m_bench_tests.helpers import cache_entries, write_click_pairs

SR = 22050


@pytest.fixture
def clips(tmp_path):
    write_click_pairs(tmp_path, [f"c{i}" for i in range(4)], sr=SR)
    return tmp_path


def _protocol(tmp_path, base, edits):
    """A copy of a shipped protocol with TOML lines replaced (``old -> new`` as regexes)."""
    text = (shipped_dir("protocols") / f"{base}.toml").read_text()
    for old, new in edits:
        text, n = re.subn(old, new, text, count=1, flags=re.M)
        assert n == 1, old
    path = tmp_path / "p.toml"
    path.write_text(text)
    return path


def _empty_cache() -> bool:
    cache = Path(os.environ["D2M_BENCH_CACHE"])
    return not cache_entries(cache)


CASES = [
    ("d2m-aistpp-2s", r"^delta = .*$", "delta = nan", "beats.onset.delta = nan"),
    ("d2m-aistpp-2s", r"^delta = .*$", "delta = inf", "beats.onset.delta = inf"),
    ("d2m-aistpp-2s", r"^bin_seconds = .*$", "bin_seconds = nan", "beats.bin_seconds = nan"),
    ("d2m-aistpp-2s", r"^bin_seconds = .*$", "bin_seconds = inf", "beats.bin_seconds = inf"),
    ("d2m-aistpp-2s", r"^bin_seconds = .*$", "bin_seconds = 1e-300", "beats.bin_seconds = 1e-300"),
    ("d2m-aistpp-2s", r"^expected_seconds = .*$", "expected_seconds = nan", "audio.expected_seconds = nan"),
    ("d2m-aistpp-2s", r"^expected_seconds = .*$", "expected_seconds = inf", "audio.expected_seconds = inf"),
    ("d2m-aistpp-2s", r"^sample_rate = .*$", "sample_rate = 10000000000", "audio.sample_rate = 10000000000"),
    ("d2m-aistpp-2s", r"^sample_rate = .*$", "sample_rate = 1e10", "audio.sample_rate = 10000000000.0"),
    ("d2m-aistpp-2s", r"^fps = .*$", "fps = nan", "alignment.fps = nan"),
    ("d2m-aistpp-2s", r"^fps = .*$", "fps = inf", "alignment.fps = inf"),
    ("d2m-aistpp-2s", r"^sigma = 3\.0.*$", "sigma = -inf", "alignment.fact.sigma = -inf"),
    ("d2m-aistpp-2s", r"^order = 10.*$", "order = 10\nbogus = 1", "unknown key(s) in [alignment.fact]: bogus"),
    ("d2m-aistpp-2s", r"^\[genre\]$", "[genre]\nk_neighbours = 3", "unknown key(s) in [genre]: k_neighbours"),
    ("d2m-aistpp-2s", r"^\[alignment\]$", "[alignment]\nfsp = 30.0", "unknown key(s) in [alignment]: fsp"),
    ("tolerance", r"^window = .*$", "window = nan", "beats.window = nan"),
]


@pytest.mark.parametrize("base,old,new,expect", CASES, ids=[c[2].splitlines()[-1] for c in CASES])
def test_bad_value_is_one_line_before_any_audio(clips, cli, base, old, new, expect):
    proto = _protocol(clips, base, [(old, new)])
    out = clips / "r.json"
    proc = cli("eval", "--pred", clips / "pred", "--gt", clips / "gt", "-p", proto, "--out", out, "-q")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"d2m-bench: error: {proto}: ") and expect in lines[0], lines[0]
    assert _empty_cache() and not out.exists()


def test_the_shipped_protocols_pass_the_value_checks():
    from d2m_bench.protocol import available_protocols

    eval_protocols = [p for p in available_protocols().values() if p.command == "eval"]
    assert len(eval_protocols) >= 5
    for p in eval_protocols:
        p.validate_eval()


def test_workers_are_capped_at_the_cores(clips, monkeypatch, capsys):
    """-j 1000 on 4 pairs: at most the usable cores (and never more than the pairs) start, and
    the cap is said on stderr."""
    import json

    import d2m_bench.features.worker as ev
    from d2m_bench.cli import main
    from d2m_bench.parallel import usable_cores

    started = []
    real = ev.ProcessPoolExecutor

    def recording(*args, max_workers=None, **kwargs):
        started.append(max_workers)
        return real(*args, max_workers=max_workers, **kwargs)

    monkeypatch.setattr(ev, "ProcessPoolExecutor", recording)
    out = clips / "r.json"
    assert main(["eval", "--pred", str(clips / "pred"), "--gt", str(clips / "gt"), "-j", "1000", "-q",
                 "--out", str(out)]) == 0
    cores = usable_cores()
    err = capsys.readouterr().err
    assert f"--workers 1000 capped at the {cores} usable core(s)" in err
    assert all(n <= min(cores, 4) for n in started)
    assert json.loads(out.read_text())["complete"] is True


@pytest.mark.parametrize("value", ["0", "-3"])
def test_workers_below_one_are_refused(clips, cli, value):
    proc = cli("eval", "--pred", clips / "pred", "--gt", clips / "gt", "-j", value, "-q")
    assert proc.returncode == 2 and "--workers must be a whole number >= 1" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
