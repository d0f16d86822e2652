"""Atomic writes: whole files or nothing, with the mode an ordinary open() gives."""
import os
import stat

import numpy as np
import pytest

from d2m_bench.io.atomic import replacing, write_text
from d2m_bench.io.cache import FileCache
from d2m_bench.data.store import save_npy


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_finished_file_gets_umask_mode_not_mkstemp_0600(tmp_path, umask_027):
    write_text(tmp_path / "a" / "result.json", "{}\n")
    assert (tmp_path / "a" / "result.json").read_text() == "{}\n"
    assert _mode(tmp_path / "a" / "result.json") == 0o640  # 0666 & ~0027; mkstemp alone gives 0600


def test_shared_writers_use_it(tmp_path, umask_027):
    save_npy(tmp_path / "x.npy", np.arange(3))
    FileCache("onsets", root=tmp_path / "cache").put("k" * 64, np.arange(3))
    entries = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert entries and all(_mode(p) == 0o640 for p in [tmp_path / "x.npy", *entries])


def test_failed_writer_leaves_neither_target_nor_temporary(tmp_path):
    target = tmp_path / "out.wav"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with replacing(target) as tmp:
            assert tmp.suffix == ".wav" and tmp.parent == tmp_path  # same folder: rename is atomic
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]
