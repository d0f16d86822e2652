"""A small demo set: synthetic "ground truth" clips and imperfect "generated" ones.

Each gt clip is a click track at random onset times over a quiet tone and noise floor; its
generated counterpart keeps, moves or drops those onsets in a known way (kind listed in
``demo/manifest.csv``), so the scores printed by `make demo` can be reasoned about.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from ..io.audio import write_audio
from ..errors import UserError
from .synthetic import click_track, random_onsets

KINDS = ("copy", "jitter_20ms", "shift_300ms", "half_dropped", "double_density", "random")


def _variant(kind, onsets, rng, seconds):
    onsets = np.asarray(onsets)
    if kind == "copy":
        return onsets
    if kind == "jitter_20ms":
        return onsets + rng.uniform(-0.02, 0.02, len(onsets))
    if kind == "shift_300ms":
        return onsets + 0.3
    if kind == "half_dropped":
        return onsets[::2]
    if kind == "double_density":
        return np.sort(np.concatenate([onsets, onsets + 0.11]))
    return np.asarray(random_onsets(rng, seconds))


FIELDS = ["id", "kind", "gt_onsets", "pred_onsets"]
_ID = re.compile(r"clip\d{3,}")


def own_files(out: Path) -> list:
    """The files an earlier ``make_demo`` wrote in ``out`` (its manifest.csv and the clips it
    lists), which ``--force`` may delete; UserError for a folder holding anything else where
    the set goes (gt/, generated/: eval would score it) or with no demo manifest at all.
    Files beside the set (results of eval, a report) are left alone."""
    if not out.is_dir():
        raise UserError("exists and is not a folder", out)
    if not any(out.iterdir()):
        return []
    manifest = out / "manifest.csv"
    try:
        with open(manifest, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            ids = [row[0] for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error):
        header, ids = None, []
    if header != FIELDS or not all(_ID.fullmatch(i) for i in ids):
        raise UserError("--force: folder has no demo manifest.csv, so it was not written by `d2m-bench demo make`; "
                        "nothing deleted; give a new or empty folder", out)
    own = [manifest]
    for sub in ("gt", "generated"):
        if not (out / sub).exists():
            continue
        if (out / sub).is_symlink() or not (out / sub).is_dir():
            raise UserError(f"--force: {sub} is not a folder the demo wrote; nothing deleted", out / sub)
        mine = {f"{i}.wav" for i in ids}
        foreign = sorted(p.name for p in (out / sub).iterdir() if p.name not in mine or not p.is_file())
        if foreign:
            raise UserError(f"--force: {sub}/ holds {len(foreign)} files the demo did not write "
                            f"({', '.join(foreign[:3])}); nothing deleted", out / sub)
        own += [p for p in (out / sub).iterdir()]
    return own


def make_demo(out, *, n=12, seconds=2.0, sr=22050, seed=0, force=False) -> Path:
    out = Path(out)
    if out.exists():
        if not force:
            raise UserError("exists (use --force to rebuild)", out)
        for path in own_files(out):
            path.unlink()
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        cid = f"clip{i:03d}"
        onsets = random_onsets(rng, seconds, rate=1.5, min_gap=0.25)
        freq = float(rng.uniform(500, 1500))
        gt = click_track(onsets, sr=sr, duration=seconds, freq=freq, tone=220.0, noise=0.002, seed=i)
        pred_onsets = _variant(kind, onsets, rng, seconds)
        pred = click_track(pred_onsets, sr=sr, duration=seconds, freq=freq * 1.5, tone=330.0, noise=0.002, seed=100 + i)
        write_audio(out / "gt" / f"{cid}.wav", gt, sr)
        write_audio(out / "generated" / f"{cid}.wav", pred, sr)
        rows.append({"id": cid, "kind": kind, "gt_onsets": " ".join(f"{t:.3f}" for t in onsets),
                     "pred_onsets": " ".join(f"{t:.3f}" for t in pred_onsets if t < seconds)})
    with open(out / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out
