"""The metric cards of docs/validity.md: `d2m-bench validity` on two gt sets, four protocols.

Not a test: a measurement reported in the docs. Run with

    .venv/bin/python -m d2m_bench_tests.benchmarks.validity_cards [--n 24] [--out DIR]

Sets: ``demo`` (`d2m-bench demo` gt clips: click tracks over a tone) and ``fluidsynth``
(the Dance2Music baseline's MIDI renders of a synthetic AIST++-like test split, FluidSynth with
the pinned General MIDI soundfont: real instrument samples, 2-s clips). Protocols: the faithful
d2m-aistpp-2s, tolerance (librosa onsets) and the two madmom detectors (extra ``madmom``).
Prints one Markdown table per set: metric, what it detects, rewards and is blind to.
"""
from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

PROTOCOLS = ("d2m-aistpp-2s", "tolerance", "tolerance-madmom-onset", "tolerance-madmom-beat")


def gt_sets(work: Path, n: int) -> dict:
    from d2m_bench import baselines
    from d2m_bench.synth.demo import make_demo
    from d2m_bench.synth.synthetic import make_tiny_dataset

    demo = make_demo(work / "demo", n=n)
    data = make_tiny_dataset(work / "data", kind="aistpp", n_train=2, n_test=n, seed=0)
    renders = work / "renders"
    baselines.run_baseline(baselines.get("dance2music"), data, renders, protocol="d2m-aistpp-2s", seed=0,
                           workers=2, force=True, progress=False)
    return {"demo": demo / "gt", "fluidsynth": renders}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--out", default=None)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    from d2m_bench.validity.run import card_lines, run_validity

    warnings.simplefilter("ignore")
    work = Path(args.out or tempfile.mkdtemp(prefix="d2m-validity-cards-"))
    sets = gt_sets(work, args.n)
    for set_name, gt in sets.items():
        for proto in PROTOCOLS:
            doc = run_validity(gt, protocol=proto, out=work / "cards" / set_name / proto, workers=args.workers)
            print(f"### {set_name} / {proto} ({doc['n_clips']} clips)")
            for line in card_lines(doc) + doc.get("notes", []):
                print(f"- {line}")
            means = doc["aggregates"]
            metrics = list(means["identity"])
            print("| transformation | " + " | ".join(metrics) + " |")
            print("|---|" + "---:|" * len(metrics))
            verdict = {(r["metric"], r["transformation"]): r["verdict"] for r in doc["rows"]}
            for t, agg in means.items():
                cells = []
                for m in metrics:
                    v = agg.get(m)
                    mark = {"detects": "", "rewards": " (+)", "blind": " (=)"}.get(verdict.get((m, t)), "")
                    cells.append("-" if v is None else f"{100 * v:.1f}{mark}")
                print(f"| {t} | " + " | ".join(cells) + " |")
            print(flush=True)


if __name__ == "__main__":
    main()
