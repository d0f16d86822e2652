"""The built-dataset format shared by the builders, the trainer and the baselines.

A dataset is one folder::

    DATASET/
      dataset.json          # what was built, how, from what (see DatasetInfo)
      manifest.csv          # one row per segment (columns below)
      audio/<split>/<id>.wav            mono PCM_16 at dataset.json's sample_rate
      motion/<split>/<id>.npy           AIST++ (120, 219) float32; TikTok (60, 75)
      keypoints/<split>/<id>.npy        2-D pose, (frames, joints, 3) = x, y, score
      joints3d/<split>/<id>.npy         3-D joints (frames, joints, 3) where available
      visual/<split>/<id>.npy           one feature vector per segment

Paths in the manifest are relative to the dataset folder; an empty cell means "not
available" (for example no genre for TikTok). The manifest is written last and atomically,
so a folder with a manifest is a complete build: a build with other parameters first moves
an existing manifest to ``.manifest.previous.csv`` (see ``retire_manifest``), and so does
``write_manifest`` before it replaces dataset.json.
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..io.atomic import replacing, write_text
from ..errors import UserError
from ..io.names import check_name, check_relative

MANIFEST = "manifest.csv"
PREVIOUS_MANIFEST = ".manifest.previous.csv"
INFO = "dataset.json"
COLUMNS = [
    "segment_id", "split", "sequence", "genre", "music_id", "start_s", "end_s",
    "audio", "motion", "keypoints", "joints3d", "visual",
]
PATH_COLUMNS = ["audio", "motion", "keypoints", "joints3d", "visual"]
# AIST++ genre codes in the column order of the D2M-GAN one-hot label arrays.
GENRES = ["gBR", "gPO", "gLO", "gMH", "gLH", "gHO", "gWA", "gKR", "gJS", "gJB"]


@dataclass
class Segment:
    segment_id: str
    split: str
    sequence: str
    genre: str = ""
    music_id: str = ""
    start_s: float = 0.0
    end_s: float = 0.0
    audio: str = ""
    motion: str = ""
    keypoints: str = ""
    joints3d: str = ""
    visual: str = ""

    @property
    def genre_index(self) -> int | None:
        return GENRES.index(self.genre) if self.genre in GENRES else None


@dataclass
class DatasetInfo:
    name: str  # "aistpp" or "tiktok" (or a user's own)
    sample_rate: int = 22050
    segment_seconds: float = 2.0
    motion_fps: float = 60.0
    motion_shape: list = field(default_factory=list)
    keypoints_format: str = ""  # "coco17" or "body25"
    keypoints_fps: float = 30.0
    joints3d_format: str = ""
    joints3d_fps: float = 60.0
    visual_extractor: str = ""
    visual_dim: int = 0
    builder: dict = field(default_factory=dict)  # builder name, version, options, source, skips


class Dataset:
    """A built dataset: ``Dataset(path).segments(split="test")``."""

    def __init__(self, root):
        self.root = Path(root)
        if not (self.root / MANIFEST).is_file():
            raise UserError(f"not a built dataset (no {MANIFEST}); build one with `d2m-bench data build`", self.root)
        try:
            self.info = DatasetInfo(**json.loads((self.root / INFO).read_text()))
        except FileNotFoundError:
            raise UserError(f"missing {INFO}", self.root) from None
        except (ValueError, TypeError) as exc:
            raise UserError(f"unreadable {INFO} ({exc})", self.root / INFO) from None
        self._segments = read_manifest(self.root / MANIFEST)

    def segments(self, split: str | None = None) -> list[Segment]:
        rows = [s for s in self._segments if split in (None, "all") or s.split == split]
        if split not in (None, "all") and not rows:
            known = sorted({s.split for s in self._segments})
            raise UserError(f"no segments in split '{split}' (splits: {', '.join(known)})", self.root)
        return rows

    def path(self, rel: str) -> Path | None:
        return self.root / rel if rel else None


def read_manifest(path) -> list[Segment]:
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return _manifest_rows(csv.DictReader(fh), path)
    except UnicodeDecodeError:
        raise UserError("manifest is not UTF-8 text", path) from None
    except csv.Error as exc:
        raise UserError(f"malformed manifest CSV ({exc})", path) from None
    except OSError as exc:
        raise UserError(f"unreadable manifest ({exc.strerror})", path) from None


def _manifest_rows(reader, path) -> list[Segment]:
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise UserError(f"manifest lacks columns {missing}", path)
    out, seen = [], set()
    for i, row in enumerate(reader, start=2):
        if None in row or any(row[c] is None for c in COLUMNS):
            raise UserError(f"line {i}: the row has {'more' if None in row else 'fewer'} fields than the header", path)
        sid = check_name(row["segment_id"], f"line {i}: segment_id", path)
        check_name(row["split"], f"line {i}: split", path)
        for col in PATH_COLUMNS:
            check_relative(row[col], f"line {i}: {col}", path)
        if sid in seen:
            raise UserError(f"duplicate segment_id {sid!r} on line {i}", path)
        seen.add(sid)
        try:
            start, end = float(row["start_s"]), float(row["end_s"])
        except ValueError:
            raise UserError(f"line {i}: start_s/end_s are not numbers", path) from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise UserError(f"line {i}: start_s/end_s are not finite", path)
        out.append(Segment(**{c: row[c] for c in COLUMNS if c not in ("start_s", "end_s")}, start_s=start, end_s=end))
    return out


def segment_list_sha256(ids) -> str:
    """SHA-256 of the sorted ids, one per line, newline-terminated: the identity of a segment list
    (recorded per split in dataset.json and in every eval result's gt set)."""
    import hashlib

    return hashlib.sha256("".join(f"{i}\n" for i in sorted(ids)).encode("utf-8")).hexdigest()


def retire_manifest(root) -> bool:
    """Move ``root/manifest.csv`` to ``.manifest.previous.csv`` (True if there was one), so the
    folder no longer claims to be a complete build while its files change."""
    try:
        os.replace(Path(root) / MANIFEST, Path(root) / PREVIOUS_MANIFEST)
        return True
    except FileNotFoundError:
        return False


def write_manifest(root, segments, info: DatasetInfo) -> None:
    """Write dataset.json, then the manifest atomically (the manifest marks completion).

    The old manifest is retired first: a kill between the two writes must not leave the old
    manifest beside the new dataset.json.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with replacing(root / MANIFEST) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            for s in segments:
                writer.writerow({c: getattr(s, c) for c in COLUMNS})
        retire_manifest(root)
        record = asdict(info)
        # the identity of each split's segment list, which eval results name their gt set by
        splits = sorted({s.split for s in segments})
        record["builder"] = dict(record.get("builder") or {}, segment_lists={
            sp: segment_list_sha256([s.segment_id for s in segments if s.split == sp]) for sp in splits})
        write_text(root / INFO, json.dumps(record, indent=2, sort_keys=True) + "\n")
