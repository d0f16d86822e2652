"""Build D2M-GAN TikTok 2-s segments from local mp4s and the annotation CSV.

Per video: K = floor(min(audio, video duration) / 2 s) windows from t = 0; ids
``<video_id>_seg<k>``. Per segment: audio demuxed (22050 Hz mono, peak 0.95), BODY_25 pose at
30 fps as keypoints (60, 25, 3) and motion (60, 75) (OpenPose JSON or MediaPipe), a visual
vector. The split comes from the CSV's ``split`` column or, without one, from the shipped
D2M-GAN segment lists (videos in neither are skipped and listed).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..io.audio import load_audio
from ..io.cache import file_digest
from .dataset import DatasetInfo, Segment
from ..errors import UserError
from ..io.names import check_name
from . import list_stems, store
from .build import check_seconds, cut_audio, finish, nonfinite, run_jobs, start, uncovered
from .visual import extract, get_extractor

POSE_FPS = 30.0
DURATION_TOLERANCE = 0.5  # seconds between the CSV's duration and the file's
_ALIASES = {"video_id": ("video_id", "video", "id", "name", "video_name"),
            "duration": ("duration", "duration_s", "seconds", "length"),
            "music_id": ("music_id", "music", "song", "song_id"),
            "dancers": ("dancers", "n_dancers", "num_dancers", "dancer_count", "number_of_dancers"),
            "sha256": ("sha256", "hash", "checksum"),
            "split": ("split",)}


def read_annotations(path) -> list[dict]:
    """Rows of the annotation CSV with canonical keys (see ``_ALIASES``); video_id is required."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheet exports start with a BOM
            reader = csv.DictReader(fh)
            fields = {f.strip().lower(): f for f in reader.fieldnames or []}
            cols = {k: next((fields[a] for a in al if a in fields), None) for k, al in _ALIASES.items()}
            if cols["video_id"] is None:
                raise UserError(f"no video id column (one of {', '.join(_ALIASES['video_id'])})", path)
            rows = [{k: (r.get(c) or "").strip() if c else "" for k, c in cols.items()} | {"line": reader.line_num}
                    for r in reader]
    except OSError as exc:
        raise UserError(f"unreadable annotation CSV ({exc.strerror})", path) from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UserError(f"unreadable annotation CSV ({exc})", path) from None
    if not rows:
        raise UserError("annotation CSV has no rows", path)
    return rows


def shipped_split() -> dict:
    out = {}
    for split in ("train", "test"):
        for sid in list_stems(f"tiktok_audio_{split}_segment.txt"):
            out[sid.rsplit("_seg", 1)[0]] = split
    return out


@dataclass(frozen=True)
class TikTokJob:
    row: dict
    split: str
    video: Path
    out: Path
    seconds: float
    sr: int
    extractor: str
    visual_dir: Path | None
    openpose: Path | None
    stale_before: int | None = None  # files older than this (mtime ns) are rewritten, see build.start


def build_video(job: TikTokJob):
    try:
        return _build_video(job)
    except UserError as exc:
        return [], [{"item": job.row["video_id"], "reason": str(exc)}], {}


def _build_video(job: TikTokJob):
    from .video import probe

    vid, row = job.row["video_id"], job.row
    vinfo = probe(job.video)
    if row["duration"]:
        try:
            annotated = float(row["duration"])
        except ValueError:
            raise UserError(f"duration '{row['duration']}' in the CSV is not a number") from None
        if abs(annotated - vinfo.duration) > DURATION_TOLERANCE:
            raise UserError(f"duration {vinfo.duration:.2f} s differs from the annotated {annotated:.2f} s", job.video)
    if row["sha256"] and file_digest(job.video) != row["sha256"].lower():
        raise UserError("sha256 differs from the annotation CSV (a different download?)", job.video)
    if not vinfo.has_audio:
        raise UserError("no audio track", job.video)
    y = load_audio(job.video, job.sr)[0]
    usable = min(len(y) / job.sr, vinfo.duration)
    k = int(usable // job.seconds + 1e-9)
    if k == 0:
        raise UserError(f"shorter than one segment ({usable:.2f} s < {job.seconds:g} s)", job.video)
    ext = get_extractor(job.extractor)
    n_pose = int(round(POSE_FPS * job.seconds))
    spans = [(i * job.seconds, (i + 1) * job.seconds) for i in range(k)]
    ids = [f"{vid}_seg{i + 1}" for i in range(k)]
    expect = {"audio": (int(round(job.seconds * job.sr)), job.sr), "motion": (n_pose, 75),
              "keypoints": (n_pose, 25, 3), "visual": (ext.dim,)}
    cols = [c for c in expect if c != "visual" or ext.dim]
    rels = [{c: f"{c}/{job.split}/{sid}.{'wav' if c == 'audio' else 'npy'}" for c in cols} for sid in ids]
    done = [all(store.is_valid(job.out / r[c], expect[c], job.stale_before) for c in cols) for r in rels]
    segs = [Segment(sid, job.split, vid, "", row["music_id"], a, b, **r) for sid, (a, b), r in zip(ids, spans, rels)]
    todo = [i for i, d in enumerate(done) if not d]
    stats = {"segments_resumed": k - len(todo), "segments_written": len(todo)}
    if not todo:
        return segs, [], stats
    times = np.concatenate([spans[i][0] + np.arange(n_pose) / POSE_FPS for i in todo])
    if job.openpose is not None:
        from .pose import openpose_sequence

        frames = np.minimum(np.round(times * vinfo.fps).astype(int), max(0, int(round(vinfo.duration * vinfo.fps)) - 1))
        pose = openpose_sequence(job.openpose, vid, frames)
    else:
        from .pose import estimate_body25

        pose = estimate_body25(job.video, times)
    vis = extract(ext, video=job.video, windows=[spans[i] for i in todo], ids=[ids[i] for i in todo],
                  folder=job.visual_dir)
    skips, dropped = [], set()
    for n, (i, v) in enumerate(zip(todo, vis)):
        r = rels[i]
        if ext.dim and v is None:  # the decoded video stopped short of what probe reported
            dropped.add(i)
            skips.append(uncovered(ids[i], spans[i], job.video, "the video has no frames for part of it"))
            continue
        kp = pose[n * n_pose:(n + 1) * n_pose].astype(np.float32)
        bad = nonfinite(ids[i], {"keypoints": kp} | ({} if v is None else {"visual": v}))
        if bad is not None:  # OpenPose JSON may hold NaN (Python's json reads it)
            dropped.add(i)
            skips.append(bad)
            continue
        clip, _ = cut_audio(y, job.sr, spans[i][0], job.seconds)
        store.save_wav(job.out / r["audio"], clip, job.sr)
        store.save_npy(job.out / r["keypoints"], kp)
        store.save_npy(job.out / r["motion"], kp.reshape(n_pose, 75))
        if v is not None:
            store.save_npy(job.out / r["visual"], v.astype(np.float32))
    stats["segments_written"] -= len(dropped)
    return [s for i, s in enumerate(segs) if i not in dropped], skips, stats


def build_tiktok(videos, annotations, out, *, openpose=None, seconds=2.0, sr=22050, visual="flow-stats",
                 visual_dir=None, strict=False, workers=1, progress=False, limit=None):
    videos = Path(videos)
    if not videos.is_dir():
        raise UserError("--videos is not a folder", videos)
    if openpose is not None and not Path(openpose).is_dir():
        raise UserError("--openpose is not a folder", openpose)
    check_seconds(seconds, POSE_FPS)
    rows = read_annotations(annotations)
    ext = get_extractor(visual)
    known = shipped_split()
    jobs, skips, first_line = [], [], {}
    for row in rows[:limit] if limit else rows:
        vid = row["video_id"]
        if not vid:
            skips.append({"item": f"line {row['line']}", "reason": f"{annotations}: empty video id"})
            continue
        check_name(vid, f"line {row['line']}: video_id", annotations)
        if vid in first_line:  # built once, from its first row: a second would repeat every segment id
            skips.append({"item": vid, "reason": f"{annotations}: line {row['line']} repeats the video of line "
                                                 f"{first_line[vid]}"})
            continue
        first_line[vid] = row["line"]
        split = row["split"] or known.get(vid)
        if split:
            check_name(split, f"line {row['line']}: split", annotations)
        if split is None:
            skips.append({"item": vid, "reason": "not in the D2M-GAN split lists (add a split column to the CSV)"})
            continue
        path = videos / f"{vid}.mp4"
        if not path.is_file():
            skips.append({"item": vid, "reason": f"{path}: missing video"})
            continue
        jobs.append(TikTokJob(row, split, path, Path(out), seconds, sr, visual,
                              Path(visual_dir) if visual_dir else None, Path(openpose) if openpose else None))
    pose_src = "openpose-json" if openpose else "mediapipe-0.10.14-blazepose-full -> body25 (README table)"
    options = {"segment_seconds": seconds, "sample_rate": sr, "visual": ext.describe(), "pose": pose_src,
               "duration_tolerance_s": DURATION_TOLERANCE, "limit": limit,
               "split": "csv column" if rows[0]["split"] else "shipped D2M-GAN lists"}
    source = {"root": str(videos), "annotations": str(annotations), "openpose": str(openpose) if openpose else None}
    stale_before = start(out, "tiktok", options, source)
    jobs = [replace(j, stale_before=stale_before) for j in jobs]
    results = run_jobs(build_video, jobs, workers=workers, progress=progress, desc="tiktok")
    results.append(([], skips, {}))
    n_pose = int(round(POSE_FPS * seconds))
    info = DatasetInfo(name="tiktok", sample_rate=sr, segment_seconds=seconds, motion_fps=POSE_FPS,
                       motion_shape=[n_pose, 75], keypoints_format="body25", keypoints_fps=POSE_FPS,
                       joints3d_format="", joints3d_fps=0.0, visual_extractor=ext.name, visual_dim=ext.dim)
    return finish(out, results, info, strict=strict, options=options, source=source)
