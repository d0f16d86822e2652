"""Predictions that look like the ground truth: --pred and --gt swapped, or the prediction files
being the gt files themselves. Either gives a result that looks fine and means nothing, so eval
says so at once (before any audio is decoded) and records it in the result's warnings.

Checked cheaply: folder names and provenance.json (which `baseline run` writes beside generated
audio) for a swap; file sizes, then bytes, of at most SAMPLE pairs for identical content.
"""
from __future__ import annotations

import filecmp
import json
import warnings
from pathlib import Path

SAMPLE = 32  # pairs whose bytes are compared: enough to tell "all copies" from chance
GT_NAMES = {"gt", "ground_truth", "groundtruth", "ground-truth", "real", "reference", "references", "ref", "target",
            "targets"}
PRED_NAMES = {"generated", "gen", "pred", "preds", "prediction", "predictions", "fake", "samples", "output",
              "outputs", "synth", "synthesized"}
REFERENCE_BASELINES = {"ground-truth"}  # a baseline whose audio is the gt by design


class LookalikeWarning(UserWarning):
    """Predictions that look like the ground truth (swapped folders, identical files)."""


def _provenance(folder) -> dict | None:
    path = Path(folder) / "provenance.json" if folder else None
    if path is None or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def swapped_note(pred, gt) -> str | None:
    """Why --pred and --gt look swapped, or None."""
    if pred is None or gt is None:
        return None
    reasons = []
    if _provenance(gt) is not None and _provenance(pred) is None:
        reasons.append(f"--gt {gt} holds the provenance.json that d2m-bench writes beside generated audio")
    if Path(pred).name.lower() in GT_NAMES and Path(gt).name.lower() in PRED_NAMES:
        reasons.append(f"--pred is named '{Path(pred).name}' and --gt '{Path(gt).name}'")
    if not reasons:
        return None
    return "--pred and --gt look swapped (" + "; ".join(reasons) + "): the scores would be of the ground truth"


def identical_note(pairs, pred=None) -> str | None:
    """How many sampled predictions are the gt file or a byte copy of it, or None."""
    prov = _provenance(pred)
    if prov and prov.get("baseline") in REFERENCE_BASELINES:
        return None  # the ground-truth reference system: copies on purpose
    sample = [p for p in pairs if p.pred is not None][:SAMPLE]
    same = 0
    for p in sample:
        try:
            if Path(p.pred).resolve() == Path(p.gt).resolve() or (
                    Path(p.pred).stat().st_size == Path(p.gt).stat().st_size and filecmp.cmp(p.pred, p.gt, shallow=False)):
                same += 1
        except OSError:
            continue  # an unreadable file is reported by the decoder, with its name
    if not sample or not (same == len(sample) or (same >= 2 and 2 * same > len(sample))):
        return None  # all copies (one clip included), or most of two or more
    return (f"{same} of {len(sample)} predictions checked are the gt files or byte copies of them: "
            "is --pred the ground truth?")


def lookalike_notes(pairs, pred, gt) -> list:
    """Every lookalike note for this run, each also emitted at once as a LookalikeWarning."""
    notes = [n for n in (swapped_note(pred, gt), identical_note(pairs, pred)) if n]
    for note in notes:
        warnings.warn(note, LookalikeWarning, stacklevel=3)
    return notes
