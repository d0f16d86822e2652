"""Peak memory of `mos aggregate` on 1,000,000 ratings with the default bootstrap (issue 13:
5.5 GB before; target below 1.5 GB).

The worst case for the bootstrap: one aspect, two systems, so each system x aspect cell holds
500,000 ratings (10,000 raters x 100 of the 2 x 50 stimuli). The aggregation runs in a fresh
process that reports its own peak resident set size, so nothing else in the session counts.
Run: .venv/bin/python -m pytest d2m_bench_tests/benchmarks/bench_mos_memory.py --benchmark-only -s
"""
import json
import subprocess
import sys

import numpy as np

RATINGS = 1_000_000
LIMIT_BYTES = 1.5e9

CHILD = """
import json, resource, sys, time
from d2m_bench.mos.aggregate import aggregate
t = time.perf_counter()
doc = aggregate(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "bootstrap": doc["protocol"]["params"]["stats"]["bootstrap"],
                  "rows": doc["input"]["rows"], "cells": len(doc["systems"])}))
"""


def write_million(path, raters=10_000, items=50, systems=2, per_rater=100, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        fh.write("rater,item,system,aspect,score,playback_complete\n")
        for r in range(raters):
            bias = rng.normal(0, 0.5)
            picks = rng.permutation(items * systems)[:per_rater]
            scores = np.clip(np.round(3 + bias + rng.normal(0, 0.8, per_rater)), 1, 5).astype(int)
            fh.write("".join(f"r{r},i{p % items},s{p // items},quality,{scores[k]},1\n" for k, p in enumerate(picks)))


def test_aggregate_million_ratings_peak_memory(benchmark, tmp_path):
    path = tmp_path / "million.csv"
    write_million(path)
    runs = []

    def run():
        res = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=3600)
        assert res.returncode == 0, res.stderr
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    r = runs[-1]
    assert r["rows"] == RATINGS and r["cells"] == 2 and r["bootstrap"] == 2000
    print(f"\nmos aggregate, {RATINGS:,} ratings (2 cells of 500,000), {r['bootstrap']} two-way bootstrap "
          f"replicates: peak RSS {r['peak_bytes'] / 2 ** 20:.0f} MiB ({r['peak_bytes'] / 1e9:.2f} GB; "
          f"limit {LIMIT_BYTES / 1e9:.1f} GB), {r['seconds']:.0f} s")
    assert r["peak_bytes"] < LIMIT_BYTES
