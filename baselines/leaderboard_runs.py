"""Leaderboard rows for every built-in baseline on the synthetic dataset (`make baselines-leaderboard`).

Builds the synthetic AIST++-like set (d2m_bench.synth.synthetic.make_tiny_dataset), runs each
built-in baseline, scores it with the ordinary `d2m-bench eval` (genre embedder mfcc-chroma,
which needs no downloaded weights; motion from the dataset's joints3d) into
``results/runs/synthetic-<name>.json`` under the system name ``synthetic-<name>``, then
rebuilds the leaderboard. The "synthetic-" prefix and the mfcc-chroma protocol variant (its
own protocol hash) keep these rows apart from the papers' reported rows: they check the
pipeline end to end and show where the floors and ceilings sit, nothing about real dance.

    python -m d2m_bench.baselines.leaderboard_runs [--results results] [--work DIR] [--n-test 12]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

PREFIX = "synthetic-"
PROTOCOL = "d2m-aistpp-2s"  # audio is generated at its rate and scored with it (+ mfcc-chroma)


def run_all(results="results", work=None, *, n_train=10, n_test=12, seed=0, names=None, workers=2) -> list[Path]:
    from d2m_bench import baselines
    from d2m_bench.cli import main as cli_main
    from d2m_bench.synth.synthetic import make_tiny_dataset

    results = Path(results)
    (results / "runs").mkdir(parents=True, exist_ok=True)
    tmp = None
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="d2m-baselines-")
        work = tmp.name
    work = Path(work)
    data = make_tiny_dataset(work / "data", kind="aistpp", n_train=n_train, n_test=n_test, seed=seed)
    written = []
    try:
        for name in names or baselines.BUILT_IN:
            pred = work / "pred" / name
            baselines.run_baseline(baselines.get(name), data, pred, protocol=PROTOCOL, seed=seed, workers=workers,
                                   force=True, progress=False)
            dest = results / "runs" / f"{PREFIX}{name}.json"
            rc = cli_main(["eval", "--pred", str(pred), "--gt", str(data / "audio" / "test"), "--data", str(data),
                           "--protocol", PROTOCOL, "--embedder", "mfcc-chroma", "--system", f"{PREFIX}{name}", "--out", str(dest),
                           "--workers", str(workers), "--quiet", "--no-cache"])
            if rc:
                raise SystemExit(rc)
            print(f"{PREFIX}{name}: {dest}")
            written.append(dest)
        cli_main(["leaderboard", "--results", str(results)])
    finally:
        if tmp is not None:
            tmp.cleanup()
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results")
    p.add_argument("--work", default=None, help="Keep the dataset and predictions here (default: a temporary folder).")
    p.add_argument("--n-train", type=int, default=10)
    p.add_argument("--n-test", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", default=None, help="Baseline names (default: every built-in one).")
    args = p.parse_args(argv)
    run_all(args.results, args.work, n_train=args.n_train, n_test=args.n_test, seed=args.seed, names=args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
