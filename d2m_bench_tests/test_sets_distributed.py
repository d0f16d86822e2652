"""Embedding under torchrun (issue 25 item 5): two gloo processes give the single process's numbers
bit for bit, each embedding its share; two processes writing the same cache entries at once
leave every entry valid. The 1,000-clip PANNs run is benchmarks/bench_sets_distributed.py."""
import json
import multiprocessing
import os
import subprocess
import sys

import numpy as np
import pytest

from d2m_bench.io.audio import write_audio
from d2m_bench.io.cache import FileCache

from .helpers import cache_entries, free_port

pytest.importorskip("torch.distributed")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """70 background and 40 evaluation clips: 3 and 2 groups of embed_files' 32 files, so both ranks work."""
    root = tmp_path_factory.mktemp("dist")
    rng = np.random.default_rng(0)
    for role, n in (("bg", 70), ("ev", 40)):
        for i in range(n):
            write_audio(root / role / f"c{i:03d}.wav", (rng.normal(size=11025) * 0.1).astype(np.float32), 22050,
                        subtype="FLOAT")
    return root


def _fad(folders, out, cache, *launcher):
    # torchrun sets OMP_NUM_THREADS=1 in its workers: the single process gets the same, as the docs ask
    env = {**os.environ, "D2M_BENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    cmd = [*launcher, "-m", "d2m_bench.cli", "fad", "-b", str(folders / "bg"), "--eval", str(folders / "ev"),
           "-e", "mfcc-chroma", "--kid-subsets", "10", "-q", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def test_two_gloo_ranks_equal_one_process(folders, tmp_path):
    single = _fad(folders, tmp_path / "one.json", tmp_path / "cache1", sys.executable)
    double = _fad(folders, tmp_path / "two.json", tmp_path / "cache2", sys.executable, "-m", "torch.distributed.run",
                  "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()))
    assert double["metrics"] == single["metrics"] and double["per_file"] == single["per_file"]
    assert single["distributed"] is None
    # bg: groups of 32, 32, 6 -> ranks 0, 1, 0; ev: 32, 8 -> ranks 0, 1
    assert double["distributed"]["files_embedded_per_rank"] == [32 + 6 + 32, 32 + 8]
    # every entry is in the shared cache: a later single-process run reads them all and agrees
    entries = cache_entries(tmp_path / "cache2" / "mfcc-chroma")
    assert len(entries) == 110
    again = _fad(folders, tmp_path / "again.json", tmp_path / "cache2", sys.executable)
    assert again["metrics"] == single["metrics"]


def _writer(root, keys, rounds):
    cache = FileCache("race", root=root)
    for _ in range(rounds):
        for k in keys:
            cache.put(k, np.full((50, 64), int(k, 16) % 1000, np.float32))


def test_concurrent_writers_of_the_same_entries(tmp_path):
    """Two processes putting the same keys at once (a network file system shared by ranks):
    os.replace leaves one complete file per entry, never a torn one."""
    keys = [f"{i:064x}" for i in range(40)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tmp_path, keys, 5)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cache = FileCache("race", root=tmp_path)
    for k in keys:
        got = cache.get(k, ndim=2)
        assert got is not None and (got == int(k, 16) % 1000).all()
    assert cache.rejected == 0
    assert not list((tmp_path / "race").rglob(".tmp-*"))  # no temporary left behind
