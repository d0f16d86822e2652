"""Pair ground-truth and predicted clips by id, never by sorted file order.

Rules (protocol ``pairing.rule``):
- ``stem``: the id is the file stem (``gPO_..._seg1.wav`` in both folders);
- ``generation``: the upstream D2M-GAN naming, ``original_N`` in gt with ``generated_N`` in pred;
- ``manifest``: a CSV with columns ``id,gt,pred`` (paths relative to the CSV's folder);
- ``auto``: ``generation`` when gt holds ``original_N`` files and pred holds ``generated_N``
  files, else ``stem``.
Under ``generation`` only ``original_N`` is taken from gt and only ``generated_N`` from pred,
so the single folder upstream ``generate_aist.py`` writes (``original_N``, ``vqvae_N`` and
``generated_N`` side by side) can be given as both --gt and --pred; the files left out are
listed in ``Pairing.notes``. A pair whose gt and pred are the same file is always an error:
it would score a clip against itself (100 %).
Missing, extra or duplicate ids are an error listing them; ``allow_missing`` turns missing
predictions into listed exclusions.
"""
from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .audio import MEDIA_EXTENSIONS
from ..errors import UserError

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
    notes: list = field(default_factory=list)  # files ignored by the rule, for the result's warnings


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def is_media(path: Path) -> bool:
    """Whether ``eval`` reads this file as a clip (dot-files are temporaries, never clips)."""
    return path.is_file() and path.suffix.lower() in MEDIA_EXTENSIONS and not path.name.startswith(".")


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
        if is_media(path):
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
        hint = _lookalike_hint(missing, extra)
        raise UserError("; ".join(problems) + hint, where)
    ids = sorted(set(gt) & set(pred), key=_natural_key)
    if not ids:
        raise UserError("no gt id has a prediction", where)
    same = [i for i in ids if _same_file(gt[i], pred[i])]
    if same:
        raise UserError(f"gt and pred are the same file for ids {_ids_summary(same)}: each clip would be "
                        f"scored against itself (give different folders, or name them original_N/generated_N)", where)
    return Pairing([Pair(i, gt[i], pred[i]) for i in ids], sorted(missing, key=_natural_key), rule)


def _lookalike_hint(missing, extra) -> str:
    """Ids that print the same but differ in Unicode normalisation (NFC vs NFD, as macOS file
    names come) or in case: 2,500 "extra" and 2,500 "missing" ids with no clue why."""
    def fold(i):
        return unicodedata.normalize("NFC", i).casefold()

    by_fold = {fold(i): i for i in extra}
    pairs = [(m, by_fold[fold(m)]) for m in sorted(missing, key=_natural_key) if fold(m) in by_fold]
    if not pairs:
        return ""
    kinds = {"case" if unicodedata.normalize("NFC", a) != unicodedata.normalize("NFC", b) else "Unicode normalisation"
             for a, b in pairs}
    gt, pred = pairs[0]
    return (f"; hint: {len(pairs)} of them differ only by {' or '.join(sorted(kinds))} (e.g. gt {ascii(gt)} vs "
            f"pred {ascii(pred)}): rename the files so that the names match exactly")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them unreadable or gone: the audio reader reports it by name
        return Path(a).absolute() == Path(b).absolute()


def _ignored_note(role: str, folder, names) -> str:
    names = sorted(names, key=_natural_key)
    head = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    want = "original_N" if role == "gt" else "generated_N"
    return f"{role} {folder}: {len(names)} file(s) not named {want} ignored by the generation rule ({head})"


def pair_directories(gt_dir, pred_dir, *, rule: str = "auto", allow_missing: bool = False) -> Pairing:
    gt = list_media(gt_dir, "gt")
    pred = list_media(pred_dir, "pred")
    if rule not in ("auto", "stem", "generation"):
        raise UserError(f"unknown pairing rule '{rule}' (auto, stem, generation, or --manifest)")
    generation = any(_ORIGINAL.match(s) for s in gt) and any(_GENERATED.match(s) for s in pred)
    if rule == "generation" and not generation:
        raise UserError("pairing rule 'generation' needs original_N files in gt and generated_N files in pred", gt_dir)
    notes = []
    if rule == "generation" or (rule == "auto" and generation):
        ignored_gt = [p.name for s, p in gt.items() if not _ORIGINAL.match(s)]
        ignored_pred = [p.name for s, p in pred.items() if not _GENERATED.match(s)]
        gt = {m.group(1): p for s, p in gt.items() if (m := _ORIGINAL.match(s))}
        pred = {m.group(1): p for s, p in pred.items() if (m := _GENERATED.match(s))}
        notes = [_ignored_note(role, folder, names) for role, folder, names in
                 (("gt", gt_dir, ignored_gt), ("pred", pred_dir, ignored_pred)) if names]
        rule = "generation"
    else:
        rule = "stem"
    pairing = _match(gt, pred, rule, allow_missing, pred_dir)
    pairing.notes = notes
    return pairing


def pair_manifest(manifest, *, allow_missing: bool = False) -> Pairing:
    manifest = Path(manifest)
    if not manifest.is_file():
        raise UserError("manifest is a directory, not a CSV file" if manifest.is_dir() else "manifest file does not exist", manifest)
    base = manifest.parent
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark
        text = manifest.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"manifest is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})", manifest) from None
    except OSError as exc:
        raise UserError(f"cannot read manifest ({exc.strerror or exc.__class__.__name__})", manifest) from None
    gt, pred = {}, {}
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        cols = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = cols
        if not {"id", "gt", "pred"} <= set(cols):
            raise UserError(f"manifest needs columns id,gt,pred (has: {','.join(cols)})", manifest)
        for row in reader:
            line = reader.line_num
            cid = (row["id"] or "").strip()
            if not cid:
                raise UserError(f"line {line}: empty id", manifest)
            if cid in gt:
                raise UserError(f"line {line}: duplicate id '{cid}'", manifest)
            if not (row["gt"] or "").strip():
                raise UserError(f"line {line}: id '{cid}' has no gt path", manifest)
            gt[cid] = base / row["gt"].strip()
            if (row["pred"] or "").strip():
                pred[cid] = base / row["pred"].strip()
    except csv.Error as exc:
        raise UserError(f"line {reader.line_num}: malformed CSV ({exc})", manifest) from None
    if not gt:
        raise UserError("manifest has no rows", manifest)
    for cid, path in [*gt.items(), *pred.items()]:
        if not path.is_file():
            what = "is not a file" if path.exists() else "does not exist"
            raise UserError(f"id '{cid}': file listed in the manifest {what}", path)
    return _match(gt, pred, "manifest", allow_missing, manifest)
