"""MOS survey server under load, and aggregation speed.

Load check: 200 simulated raters at once (one thread and one keep-alive connection each)
against the local ThreadingHTTPServer: session fetch, one rating per stimulus (10 each), one
duplicate re-submission (must get 409). Afterwards every accepted rating is in SQLite exactly
once. Run: .venv/bin/python -m pytest d2m_bench_tests/benchmarks/bench_mos.py --benchmark-only -s
"""
import csv
import sqlite3

import numpy as np

from d2m_bench.mos.aggregate import aggregate
from d2m_bench.survey.build import build_survey
from d2m_bench.survey.loadcheck import simulate_raters
from d2m_bench.survey.server import serve_in_thread
from d2m_bench_tests.helpers import make_inputs

RATERS = 200


def test_survey_server_200_raters(benchmark, tmp_path):
    systems, videos = make_inputs(tmp_path, systems=("gt", "a", "b", "c"), segments=5, seconds=0.4)
    doc = build_survey(systems, videos, tmp_path / "s", n_raters=RATERS, per_rater=4, traps_per_rater=1,
                       trap_method="beep", progress=False)
    db = tmp_path / "s" / "ratings.sqlite"
    results = []

    def setup():
        for suffix in ("", "-wal", "-shm"):
            db.with_name(db.name + suffix).unlink(missing_ok=True)

    def run():
        server, base = serve_in_thread(tmp_path / "s")
        try:
            results.append(simulate_raters(base, doc["raters"], seed=len(results)))
        finally:
            server.shutdown()
            server.server_close()
            server.RequestHandlerClass.survey.store.close()
        rows = sqlite3.connect(db).execute("SELECT rater, stimulus, score FROM ratings").fetchall()
        results[-1]["rows"] = rows

    benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)
    per_rater = 2 * (4 + 1)
    for res in results:
        assert res["errors"] == {}
        accepted = {(r, s, sc) for r, v in res["raters"].items() for s, sc in v["accepted"]}
        assert len(res["rows"]) == RATERS * per_rater == len(accepted)  # nothing lost
        assert len({(r, s) for r, s, _ in res["rows"]}) == len(res["rows"])  # nothing twice
        assert set(res["rows"]) == accepted
        assert all(v["duplicate_status"] == 409 for v in res["raters"].values())
        print(f"\n{RATERS} raters, {res['requests']} requests in {res['seconds']:.2f} s: "
              f"{res['requests_per_s']:.0f} req/s, latency p50 {res['latency_ms_p50']:.1f} ms, "
              f"p95 {res['latency_ms_p95']:.1f} ms, max {res['latency_ms_max']:.1f} ms; "
              f"{len(res['rows'])} rows, 0 lost, 0 duplicated, {RATERS} duplicates refused")


def test_aggregate_speed(benchmark, tmp_path):
    """200 raters x 10 systems x 20 items x 2 aspects = 8000 ratings, 2000 bootstrap replicates."""
    rng = np.random.default_rng(0)
    path = tmp_path / "r.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rater", "item", "system", "aspect", "score", "playback_complete"])
        for r in range(200):
            bias = rng.normal(0, 0.5)
            for k in range(20):
                s, i = (r + k) % 10, (r * 7 + k) % 20
                for aspect in ("coherence", "quality"):
                    w.writerow([f"r{r}", f"i{i}", f"s{s}", aspect, int(np.clip(round(2 + s * 0.25 + bias + rng.normal(0, 0.8)), 1, 5)), 1])
    doc = benchmark.pedantic(lambda: aggregate(path, n_boot=2000), rounds=2, iterations=1)
    assert len(doc["systems"]) == 20 and len(doc["pairwise"]) == 2 * 45
    print(f"\naggregate 8000 ratings (20 system x aspect cells, 2000 two-way bootstrap replicates each, "
          f"90 pairwise tests): {benchmark.stats.stats.mean:.2f} s")
