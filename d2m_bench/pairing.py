"""Pair ground-truth and predicted clips by id, never by sorted file order.

Rules (protocol ``pairing.rule``):
- ``stem``: the id is the file stem (``gPO_..._seg1.wav`` in both folders);
- ``generation``: the upstream D2M-GAN naming, ``original_N`` in gt with ``generated_N`` in pred;
- ``manifest``: a CSV with columns ``id,gt,pred`` (paths relative to the CSV's folder);
- ``auto``: ``generation`` when every gt stem is ``original_N`` and every pred stem is
  ``generated_N``, else ``stem``.
Missing, extra or duplicate ids are an error listing them; ``allow_missing`` turns missing
predictions into listed exclusions.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from .audio import MEDIA_EXTENSIONS
from .errors import UserError

_ORIGINAL = re.compile(r"^original_(\d+)$")
_GENERATED = re.compile(r"^generated_(\d+)$")


@dataclass(frozen=True)
class Pair:
    id: str
    gt: Path
    pred: Path | None  # None only for an allowed missing prediction


@dataclass
class Pairing:
    pairs: list  # complete pairs, sorted by id (natural order of numbers)
    missing: list  # gt ids without a prediction (only when allowed)
    rule: str


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def list_media(folder, role: str) -> dict[str, Path]:
    """Media files of a folder by stem; errors on a missing/empty folder or duplicate stems."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{role} directory does not exist", folder)
    if not folder.is_dir():
        raise UserError(f"{role} path is not a directory", folder)
    files: dict[str, Path] = {}
    dups: dict[str, list] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in MEDIA_EXTENSIONS and not path.name.startswith("."):
            if path.stem in files:
                dups.setdefault(path.stem, [files[path.stem].name]).append(path.name)
            files[path.stem] = path
    if not files:
        raise UserError(f"{role} directory has no audio or video files ({', '.join(sorted(MEDIA_EXTENSIONS))})", folder)
    if dups:
        listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(dups.items()))
        raise UserError(f"duplicate ids in {role} (same stem, several files): {listed}", folder)
    return files


def _ids_summary(ids, limit=10) -> str:
    ids = sorted(ids, key=_natural_key)
    head = ", ".join(ids[:limit])
    return f"{len(ids)} ({head}{', ...' if len(ids) > limit else ''})"


def _match(gt: dict, pred: dict, rule: str, allow_missing: bool, where) -> Pairing:
    missing = set(gt) - set(pred)
    extra = set(pred) - set(gt)
    problems = []
    if extra:
        problems.append(f"extra ids in pred, not in gt: {_ids_summary(extra)}")
    if missing and not allow_missing:
        problems.append(f"missing predictions for gt ids: {_ids_summary(missing)} (use --allow-missing to score the rest)")
    if problems:
        raise UserError("; ".join(problems), where)
    ids = sorted(set(gt) & set(pred), key=_natural_key)
    if not ids:
        raise UserError("no gt id has a prediction", where)
    return Pairing([Pair(i, gt[i], pred[i]) for i in ids], sorted(missing, key=_natural_key), rule)


def pair_directories(gt_dir, pred_dir, *, rule: str = "auto", allow_missing: bool = False) -> Pairing:
    gt = list_media(gt_dir, "gt")
    pred = list_media(pred_dir, "pred")
    if rule not in ("auto", "stem", "generation"):
        raise UserError(f"unknown pairing rule '{rule}' (auto, stem, generation, or --manifest)")
    generation = all(_ORIGINAL.match(s) for s in gt) and all(_GENERATED.match(s) for s in pred)
    if rule == "generation" and not generation:
        raise UserError("pairing rule 'generation' needs original_N files in gt and generated_N files in pred", gt_dir)
    if rule == "generation" or (rule == "auto" and generation):
        gt = {_ORIGINAL.match(s).group(1): p for s, p in gt.items()}
        pred = {_GENERATED.match(s).group(1): p for s, p in pred.items()}
        rule = "generation"
    else:
        rule = "stem"
    return _match(gt, pred, rule, allow_missing, pred_dir)


def pair_manifest(manifest, *, allow_missing: bool = False) -> Pairing:
    manifest = Path(manifest)
    if not manifest.is_file():
        raise UserError("manifest file does not exist", manifest)
    base = manifest.parent
    gt, pred = {}, {}
    with open(manifest, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        if not {"id", "gt", "pred"} <= set(cols):
            raise UserError(f"manifest needs columns id,gt,pred (has: {','.join(cols)})", manifest)
        for line, row in enumerate(reader, start=2):
            cid = (row["id"] or "").strip()
            if not cid:
                raise UserError(f"line {line}: empty id", manifest)
            if cid in gt:
                raise UserError(f"line {line}: duplicate id '{cid}'", manifest)
            gt[cid] = base / row["gt"].strip()
            if (row["pred"] or "").strip():
                pred[cid] = base / row["pred"].strip()
    if not gt:
        raise UserError("manifest has no rows", manifest)
    for cid, path in [*gt.items(), *pred.items()]:
        if not path.is_file():
            raise UserError(f"id '{cid}': file listed in the manifest does not exist", path)
    return _match(gt, pred, "manifest", allow_missing, manifest)
