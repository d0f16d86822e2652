"""Where the leaderboard looks for run files, and what it would miss: a count of the files it
reads and a warning for result files lying where it does not read (RESULTS itself, a folder
given as RESULTS that is the runs folder itself, other subfolders)."""
from __future__ import annotations

import json
from pathlib import Path


def _is_result(path: Path) -> bool:
    """A JSON file that looks like a d2m-bench eval or MOS output (read leniently, first 1 MB)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
        doc = json.loads(head)
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and ("leaderboard" in doc or doc.get("tool") == "d2m-bench")


def survey(results_dir) -> tuple[int, list]:
    """(run files the leaderboard reads in RESULTS/runs, warnings about results it will not read)."""
    results_dir = Path(results_dir)
    runs = results_dir / "runs"
    found = len(list(runs.glob("*.json"))) if runs.is_dir() else 0
    notes = []
    if results_dir.is_dir():
        stray = sorted(p for p in results_dir.glob("*.json") if _is_result(p))
        if stray:
            hint = (f"; did you mean --results {results_dir.parent}?" if results_dir.name == "runs" else
                    f"; move them to {runs}/")
            notes.append(f"{results_dir}: {len(stray)} result file(s) not read (the leaderboard reads "
                         f"{runs}/*.json): {', '.join(p.name for p in stray[:5])}"
                         + (" ..." if len(stray) > 5 else "") + hint)
        for sub in sorted(p for p in results_dir.iterdir() if p.is_dir() and p.name not in ("runs", "reported")):
            n = sum(1 for p in sub.glob("*.json") if _is_result(p))
            if n:
                notes.append(f"{sub}: {n} result file(s) not read (only {runs}/*.json is)")
    return found, notes
