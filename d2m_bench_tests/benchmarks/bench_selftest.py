"""`make bench`: `d2m-bench selftest` end to end (target: the whole battery under 60 s on 2 cores).

One round in this process, as the command runs it (inputs written to a temporary folder, every
case through evaluate with one worker); every case must pass.
"""
import time

from d2m_bench.selftest import run_selftest


def test_selftest_battery_time(benchmark):
    start = time.perf_counter()
    results = benchmark.pedantic(run_selftest, rounds=1, iterations=1)
    seconds = time.perf_counter() - start
    slowest = max(results, key=lambda r: r.seconds)
    print(f"\nselftest: {len(results)} cases in {seconds:.1f} s (slowest {slowest.case.name} {slowest.seconds:.1f} s)")
    benchmark.extra_info.update(seconds=seconds, cases={r.case.name: r.seconds for r in results})
    assert all(r.passed for r in results), [(r.case.name, r.failures) for r in results if not r.passed]
    assert seconds < 60
