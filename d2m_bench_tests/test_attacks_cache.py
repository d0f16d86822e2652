"""Issue 13, failures 1 and 11 (cache part): `cache clear` wiped whatever the root held; corrupt
cache entries crashed eval and forged ones were scored silently."""
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from d2m_bench.io.cache import FileCache
from d2m_bench.evaluation import evaluate
from d2m_bench.synth.synthetic import click_track
from d2m_bench_tests.helpers import cache_entries, read_cache_entry, write_cache_entry

SR = 22050


def _user_files(root: Path) -> dict:
    """A folder that is not a cache: a home directory with documents, one of them in a
    sub-folder named like a cache namespace."""
    files = {root / "notes.txt": "keep me", root / "Documents" / "thesis.tex": "years of work",
             root / "events" / "diary.txt": "named like a namespace, still mine",
             root / "vggish" / "ab" / ("ab" + "0" * 62 + ".npy"): "named like an entry, in an untagged folder"}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def _intact(files: dict) -> bool:
    return all(p.is_file() and p.read_text() == t for p, t in files.items())


@pytest.mark.parametrize("how", ["--root", "D2M_BENCH_CACHE"])
def test_clear_refuses_a_root_the_cache_did_not_create(tmp_path, cli, how):
    home = tmp_path / "home"
    files = _user_files(home)
    env = dict(os.environ)
    args = ["cache", "clear"]
    if how == "--root":
        args = ["cache", "--root", home, "clear"]
    else:
        env["D2M_BENCH_CACHE"] = str(home)
    proc = cli(*args, env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert f"{home}: not a d2m-bench cache" in lines[0]
    assert _intact(files)


def test_clear_removes_only_its_own_entries(tmp_path, cli):
    root = tmp_path / "cache"
    cache = FileCache("events", root)
    for i in range(3):
        cache.put(cache.key(f"file{i}", {}), np.arange(4.0))
    theirs = {cache.dir / "README.txt": "a note someone left in the namespace",
              cache.dir / "ab" / "mine.npy": "not an entry name"}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "precious.npy").write_text("reached through a link")
    for path, text in theirs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (cache.dir / "cd").symlink_to(outside, target_is_directory=True)
    user_dir = root / "photos"  # a folder the cache did not create, inside its root
    user_dir.mkdir()
    (user_dir / "cat.jpg").write_text("meow")
    proc = cli("cache", "--root", root, "clear")
    assert proc.returncode == 0, proc.stderr
    assert "removed 3 entries" in proc.stdout and "left 2 file(s)" in proc.stderr
    assert _intact(theirs) and (outside / "precious.npy").read_text() == "reached through a link"
    assert (user_dir / "cat.jpg").read_text() == "meow"
    assert not list(cache.dir.rglob("*.entry"))


def test_clear_refuses_a_namespace_that_climbs_out(tmp_path, cli):
    root = tmp_path / "cache"
    FileCache("events", root).put("a" * 64, np.arange(3.0))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data.txt").write_text("x")
    proc = cli("cache", "--root", root, "clear", "../victim")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert (victim / "data.txt").read_text() == "x"


# --- corrupt and forged entries ----------------------------------------------------------------

def _clips(tmp_path):
    for i in range(4):  # distinct content, so that each file has its own entry
        for role, times in (("gt", [0.3 + 0.05 * i, 1.3]), ("pred", [0.3 + 0.05 * i])):
            path = tmp_path / role / f"c{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), click_track(times, sr=SR, duration=2.0), SR)


def _entries():
    return cache_entries(os.environ["D2M_BENCH_CACHE"])


def _forge(kind, data):
    if kind == "forged":  # plausible numbers: every 0.25 s an onset, so pred covers every bin
        head = data[:5]
        return np.concatenate([head, np.arange(0.05, 2.0, 0.25)])
    if kind == "nan":
        return np.full_like(data, np.nan)
    if kind == "string":
        return np.array(["22050"] * len(data))
    return np.stack([data, data])  # "2d": the wrong shape


@pytest.mark.parametrize("kind", ["forged", "nan", "string", "2d"])
def test_corrupt_or_forged_entries_are_recomputed_not_scored(tmp_path, kind):
    _clips(tmp_path)
    clean = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    truth = [r["beats_coverage"] for r in clean.per_clip]
    assert truth == [0.5] * 4  # one click of two bins, by construction
    entries = _entries()
    assert len(entries) == 16  # onset events and sanity levels of 4 gt + 4 pred files
    for path in entries:
        data, check = read_cache_entry(path)
        write_cache_entry(path, _forge(kind, data), check)  # values edited, the old check kept
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    assert [r["beats_coverage"] for r in again.per_clip] == truth
    assert not any(r["cached"] for r in again.per_clip)
    assert any("cache entry not used" in str(w.message) for w in caught)  # said, not silent
    third = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)  # rewritten entries are good again
    assert all(r["cached"] for r in third.per_clip)


@pytest.mark.parametrize("value", [np.array([1.0, np.nan]), np.array([np.inf]), np.array(["a", "b"])])
def test_entries_that_are_not_finite_numbers_are_misses(tmp_path, value):
    cache = FileCache("events", tmp_path / "c")
    cache.put("e" * 64, value)  # written through the cache itself: the integrity check passes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.get("e" * 64) is None
    assert any("not all finite numbers" in str(w.message) for w in caught)


def test_an_entry_copied_under_another_key_is_a_miss(tmp_path):
    cache = FileCache("events", tmp_path / "c")
    cache.put("a" * 64, np.arange(5.0))
    target = cache.dir / "bb" / ("b" * 64 + ".entry")
    target.parent.mkdir()
    target.write_bytes((cache.dir / "aa" / ("a" * 64 + ".entry")).read_bytes())
    with pytest.warns(UserWarning, match="integrity check failed"):
        assert cache.get("b" * 64) is None
    np.testing.assert_array_equal(cache.get("a" * 64), np.arange(5.0))
