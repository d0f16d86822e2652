"""`d2m-bench selftest`: run a fixed battery through `evaluate` and compare with shipped values.

The expected values (``expected.json``) come from literal ports of the published scripts
(D2M-GAN Beats_Scores, LORIS beats_scores, mint calculate_beat_scores, Bailando
beat_align_score, the Frechet distance of fadtk and frechet-audio-distance), run on the same
inputs in the test tree, which regenerates them and checks they equal this file. Nothing here
computes an expected value.
"""
from __future__ import annotations

import json
import math
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .cases import CASES, Case, write_case

EXPECTED = Path(__file__).parent / "expected.json"
# Beat ratios are quotients of small integers: equal means equal. BeatAlign: mint computes the
# distances in float32. FAD: eigendecomposition against sqrtm, a few ulps of a sum of 32 terms.
# Peer cases: a network's float32 arithmetic, whose last bits depend on the CPU and BLAS.
TOLERANCE = {"beats": 1e-12, "alignment": 1e-6, "fad": 1e-9, "peer": 1e-4}
BEAT_METRICS = {"d2m-aistpp-2s": ("beats_coverage", "beats_hit"), "loris": ("loris_coverage", "loris_hit")}
LENGTHS = ("gt_loaded_samples", "pred_loaded_samples")  # samples at the protocol rate, as loaded
ALIGN_METRICS = ("beat_align_fact", "beat_align_bailando", "beat_align_fact_gt", "beat_align_bailando_gt")


@dataclass
class CaseResult:
    case: Case
    checks: int = 0
    failures: list = field(default_factory=list)
    max_diff: float = 0.0
    seconds: float = 0.0
    skipped: str | None = None  # why a case could not run on this install (a missing library or program)

    @property
    def passed(self) -> bool:
        return self.checks > 0 and not self.failures


def load_expected(path=None) -> dict:
    from ..errors import UserError

    path = Path(path) if path else EXPECTED

    def no_constant(name):  # NaN, Infinity: not a number any case can be compared with
        raise ValueError(f"{name} is not an expected value")

    try:
        doc = json.loads(path.read_text(), parse_constant=no_constant)
    except (OSError, ValueError, RecursionError) as exc:
        raise UserError(f"unreadable expected-values file ({str(exc)[:200]})", path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), dict):
        raise UserError("expected-values file has no 'cases' table", path)
    for name, case in doc["cases"].items():
        problem = _case_problem(case)
        if problem:
            raise UserError(f"corrupt expected-values file: cases.{name}{problem}", path)
    return doc


def _case_problem(case) -> str | None:
    """Where a case of expected.json is not {per_clip: {id: {metric: number|null}}, aggregate:
    {metric: number|null}, excluded: [id]}, or None."""
    def value_ok(v):
        return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))

    if not isinstance(case, dict):
        return ": not an object"
    per_clip = case.get("per_clip", {})
    if not isinstance(per_clip, dict):
        return ".per_clip: not an object"
    for cid, metrics in per_clip.items():
        if not isinstance(metrics, dict):
            return f".per_clip.{cid}: not an object"
        bad = next((m for m, v in metrics.items() if not value_ok(v)), None)
        if bad is not None:
            return f".per_clip.{cid}.{bad}: not a number"
    aggregate = case.get("aggregate", {})
    if not isinstance(aggregate, dict):
        return ".aggregate: not an object"
    bad = next((m for m, v in aggregate.items() if not value_ok(v)), None)
    if bad is not None:
        return f".aggregate.{bad}: not a number"
    excluded = case.get("excluded", [])
    if not isinstance(excluded, list) or not all(isinstance(i, str) for i in excluded):
        return ".excluded: not a list of ids"
    return None


def _compare(res: CaseResult, where: str, got, want, tol: float, relative: bool = False) -> None:
    res.checks += 1
    if want is None or got is None:
        if want is not got:
            res.failures.append(f"{where}: got {got!r}, expected {want!r}")
        return
    diff = abs(float(got) - float(want))
    scale = max(abs(float(want)), 1e-300) if relative else 1.0
    res.max_diff = max(res.max_diff, diff)
    if not math.isfinite(float(got)) or diff > tol * scale:
        res.failures.append(f"{where}: got {float(got):.12g}, expected {float(want):.12g}")


def _observed(case: Case, folder: Path) -> dict:
    """What this installation computes for a case, in the layout of expected.json."""
    if case.kind == "fad":
        import numpy as np

        from ..metrics.fad import frechet_audio_distance

        return {"aggregate": {"fad": frechet_audio_distance(np.load(folder / "pred.npy"), np.load(folder / "gt.npy"))}}
    if case.kind == "peer":
        return _observed_peer(case, folder)
    from ..evaluation import evaluate

    options = {"motion": str(folder / "motion")} if case.kind == "alignment" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evaluate(folder / "pred", folder / "gt", protocol=case.protocol, workers=1, cache=False,
                          options=options)
    metrics = ALIGN_METRICS if case.kind == "alignment" else BEAT_METRICS[case.protocol]
    columns = metrics if case.kind == "alignment" else metrics + LENGTHS
    rows = {r["id"]: r for r in result.per_clip}
    excluded = sorted(e["id"] for e in result.excluded if case.kind != "alignment" and not e.get("section"))
    return {"per_clip": {i: {m: rows[i].get(m) for m in columns} for i in case.ids if i not in excluded},
            "aggregate": {m: result.aggregate[m]["value"] for m in metrics if m in result.aggregate},
            "excluded": excluded}


def _observed_peer(case: Case, folder: Path) -> dict:
    """A peer protocol's metric from the case's files, with seeded random weights."""
    from ..evaluation import evaluate
    from .cases import seeded_weights

    name, metric = case.options["embedder"], case.options["metric"]
    weights = seeded_weights(name, folder.parent / "weights")
    options = {"vggish_weights": str(weights)} if name == "vggish" else {"weights": {name: str(weights)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evaluate(folder / "pred", folder / "gt", protocol=case.protocol, workers=1, cache=False,
                          options=options, overrides=case.options["overrides"])
    rows = {r["id"]: r for r in result.per_clip}
    per_clip = {i: {metric: rows[i][metric]} for i in case.ids if metric in rows.get(i, {})}
    return {"per_clip": per_clip, "aggregate": {metric: result.aggregate[metric]["value"]}, "excluded": []}


def check_case(case: Case, want: dict, root) -> CaseResult:
    res = CaseResult(case)
    if case.kind == "peer":
        from .cases import missing_requirements

        res.skipped = missing_requirements(case)
        if res.skipped:
            return res
    start = time.perf_counter()
    try:
        got = _observed(case, write_case(case, root))
    except Exception as exc:  # a crash is a failed case, named in the table
        res.failures.append(f"{exc.__class__.__name__}: {exc}")
        res.seconds = time.perf_counter() - start
        return res
    tol = TOLERANCE[case.kind]
    relative = case.kind in ("fad", "peer")
    if sorted(want.get("excluded", [])) != got.get("excluded", []):
        res.failures.append(f"excluded clips {got.get('excluded')} , expected {want.get('excluded', [])}")
    res.checks += 1
    for cid, metrics in want.get("per_clip", {}).items():
        for metric, value in metrics.items():
            _compare(res, f"{cid} {metric}", got.get("per_clip", {}).get(cid, {}).get(metric), value, tol, relative)
    for metric, value in want.get("aggregate", {}).items():
        _compare(res, f"mean {metric}", got["aggregate"].get(metric), value, tol, relative)
    res.seconds = time.perf_counter() - start
    return res


def run_selftest(*, expected=None, workdir=None, only=None, progress=None) -> list[CaseResult]:
    """Run every case (or those named in ``only``) and compare; ``progress(case)`` is called
    before each. Inputs are written to ``workdir`` (kept) or a temporary folder (removed)."""
    doc = load_expected(expected)
    cases = [c for c in CASES if not only or c.name in only]
    results = []
    with tempfile.TemporaryDirectory(prefix="d2m-selftest-") as tmp:
        root = Path(workdir) if workdir else Path(tmp)
        for case in cases:
            if progress:
                progress(case)
            want = doc["cases"].get(case.name)
            if want is None:
                res = CaseResult(case)
                res.failures.append("no expected values for this case in the expected-values file")
                results.append(res)
                continue
            results.append(check_case(case, want, root))
    return results
