"""Summary and validation of a built dataset (``d2m-bench data info``)."""
from __future__ import annotations

from collections import Counter

from .dataset import PATH_COLUMNS, Dataset
from ..errors import UserError
from . import store


def expected_shapes(info) -> dict:
    """Column -> expected shape (None = any size on that axis) from dataset.json."""
    sec = info.segment_seconds
    kp = int(round(sec * info.keypoints_fps)) if info.keypoints_fps else None
    j3 = int(round(sec * info.joints3d_fps)) if info.joints3d_fps else None
    joints = {"coco17": 17, "body25": 25}
    return {"audio": (int(round(sec * info.sample_rate)), info.sample_rate),
            "motion": tuple(info.motion_shape) if info.motion_shape else None,
            "keypoints": (kp, joints.get(info.keypoints_format), 3),
            "joints3d": (j3, joints.get(info.joints3d_format), 3),
            "visual": (info.visual_dim,) if info.visual_dim else None}


def validate(ds: Dataset) -> int:
    """Check that every referenced file exists, has the declared shape and holds only finite
    numbers; returns the number of files checked. Raises UserError naming the first bad file."""
    shapes = expected_shapes(ds.info)
    n = 0
    for seg in ds.segments():
        for col in PATH_COLUMNS:
            rel = getattr(seg, col)
            if not rel:
                continue
            path = ds.root / rel
            if not path.is_file():
                raise UserError(f"missing file referenced by segment {seg.segment_id}", path)
            want = shapes[col]
            if col == "audio":
                got = store.wav_frames(path)
                if got is None:
                    raise UserError("unreadable audio", path)
                if got != want:
                    raise UserError(f"audio has {got[0]} samples at {got[1]} Hz, dataset.json declares "
                                    f"{want[0]} at {want[1]} Hz", path)
                if not store.wav_finite(path):
                    raise UserError("audio holds non-finite samples (NaN or inf)", path)
            else:
                got = store.npy_shape(path)
                if got is None:
                    raise UserError("unreadable .npy", path)
                if want is not None and not store.shape_matches(got, want):
                    raise UserError(f"{col} has shape {got}, dataset.json declares "
                                    f"{tuple('any' if w is None else w for w in want)}", path)
                finite = store.npy_finite(path)
                if finite is None:
                    raise UserError("unreadable .npy (truncated, or not plain numbers)", path)
                if not finite:
                    raise UserError(f"{col} holds non-finite values (NaN or inf)", path)
            n += 1
    return n


def summarise(ds: Dataset) -> dict:
    segs = ds.segments()
    info = ds.info
    per_split = Counter(s.split for s in segs)
    per_genre = {sp: dict(sorted(Counter(s.genre or "-" for s in segs if s.split == sp).items())) for sp in per_split}
    seqs = {sp: len({s.sequence for s in segs if s.split == sp}) for sp in per_split}
    hours = {sp: sum(s.end_s - s.start_s for s in segs if s.split == sp) / 3600 for sp in per_split}
    present = [c for c in PATH_COLUMNS if any(getattr(s, c) for s in segs)]
    return {"root": str(ds.root), "name": info.name, "segments": dict(per_split), "sequences": seqs,
            "hours": hours, "genres": per_genre, "shapes": {k: v for k, v in expected_shapes(info).items() if v and k in present},
            "columns_present": present,
            "visual_extractor": info.visual_extractor, "visual_dim": info.visual_dim,
            "segment_seconds": info.segment_seconds, "sample_rate": info.sample_rate,
            "skipped_at_build": info.builder.get("n_skipped", 0)}
