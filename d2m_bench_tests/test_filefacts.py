"""Issue 20: a cached eval reads no input file. Each file's SHA-256 and declared length are
remembered per file state (d2m_bench.io.filefacts), and a changed file is never mistaken for
the one remembered."""
import hashlib
import os

import pytest
import soundfile as sf

from d2m_bench.evaluation import evaluate
from d2m_bench.io import audio, filefacts
from d2m_bench.io.cache import FileCache
from d2m_bench.synth.synthetic import click_track
from d2m_bench_tests.helpers import write_click_pairs

SR = 22050
STEMS = ["a", "b", "c", "d", "e"]


@pytest.fixture
def trusting(monkeypatch, tmp_path):
    """A cache in tmp_path, and files trusted at once: they were all written moments ago."""
    monkeypatch.setenv("D2M_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(filefacts, "RACY_SECONDS", 0.0)


def test_a_cached_run_reads_no_input_file(tmp_path, trusting, monkeypatch):
    write_click_pairs(tmp_path, STEMS)
    first = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    for name in ("media_digest", "declared_seconds", "decode_audio"):
        monkeypatch.setattr(audio, name, lambda path, *a, name=name, **k: pytest.fail(f"{name}({path})"))
    second = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    assert all(r["cached"] for r in second.per_clip)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "cached"} for r in rows]
    assert strip(second.per_clip) == strip(first.per_clip)
    assert [r["beats_coverage"] for r in second.per_clip] == [0.5] * 5  # one click of the gt's two bins


def test_a_file_rewritten_in_place_with_its_old_mtime_is_read_again(tmp_path, trusting):
    write_click_pairs(tmp_path, STEMS)
    first = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    assert first.per_clip[2]["beats_coverage"] == 0.5
    path = tmp_path / "pred" / "c.wav"
    before = os.stat(path)
    sf.write(str(path), click_track([0.3, 1.6], sr=SR, duration=2.0), SR)  # same format and length: same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back; the ctime cannot be
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    second = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    row = second.per_clip[2]
    assert row["beats_coverage"] == 1.0 and not row["cached"]  # both clicks now: both bins
    assert row["pred_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [r["beats_coverage"] for i, r in enumerate(second.per_clip) if i != 2] == [0.5] * 4


def test_a_file_written_moments_ago_is_not_remembered(tmp_path):
    """As git's racy check: a write within the clock tick of the read could leave the state as
    it was, so a state younger than RACY_SECONDS at the time of reading is not kept."""
    path = tmp_path / "x.wav"
    path.write_bytes(b"RIFF")
    state = filefacts.file_state(path)
    memo = filefacts.FactsMemo(FileCache("files", tmp_path / "cache"))
    written = max(state[3], state[4]) / 1e9
    assert not memo.note(path, state, "0" * 64, 1.0, now=written + filefacts.RACY_SECONDS / 2)
    assert memo.recall(path, state) is None
    assert memo.note(path, state, "0" * 64, 1.0, now=written + filefacts.RACY_SECONDS + 1)
    memo.save()
    again = filefacts.FactsMemo(FileCache("files", tmp_path / "cache"))  # a later run reads the saved entry
    assert again.recall(path, state) == ("0" * 64, 1.0)
    assert again.recall(path, state[:4] + (state[4] + 1,)) is None  # any other ctime: another file


def test_one_memo_entry_per_folder_of_inputs(tmp_path, trusting):
    write_click_pairs(tmp_path, STEMS)
    evaluate(tmp_path / "pred", tmp_path / "gt", workers=2)
    assert len(list((tmp_path / "cache" / "files").rglob("*.entry"))) == 2  # gt/ and pred/, not 10 files


def test_a_damaged_memo_is_ignored(tmp_path, trusting):
    write_click_pairs(tmp_path, STEMS)
    first = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    for entry in (tmp_path / "cache" / "files").rglob("*.entry"):
        entry.write_bytes(entry.read_bytes()[:-7])  # truncated: the integrity check fails
    with pytest.warns(UserWarning, match="cache entry not used"):
        second = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    assert [r["beats_coverage"] for r in second.per_clip] == [r["beats_coverage"] for r in first.per_clip]
    assert all(r["cached"] for r in second.per_clip)  # hashed again, and the content-keyed entries served
