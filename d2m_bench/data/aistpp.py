"""Build the D2M-GAN AIST++ 2-s segments from the official AIST++ layout.

Per sequence of the cross-modal split: K = floor(N / 120) windows of 2 s from t = 0
(N motion frames at 60 fps), ids ``<video>_seg<k>`` with the chosen camera (c01). Per segment:
audio (music wav cut at the window, 22050 Hz mono, peak 0.95), motion (120, 219),
keypoints (60, 17, 3) COCO-17 of the camera at 30 fps (every 2nd 60-fps frame), joints3d
(120, 17, 3) at 60 fps, and a visual vector.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..io.audio import load_audio
from .dataset import DatasetInfo, Segment
from ..errors import UserError
from ..io.safe_pickle import load_data_pickle
from . import store
from .build import check_seconds, cut_audio, finish, nonfinite, run_jobs, start, uncovered
from .rotations import aistpp_motion_features
from .segments import aistpp_split, parse_aist_name, video_name, windows
from .visual import extract, get_extractor

MOTION_FPS = 60.0
KEYPOINT_FPS = 30.0
FPS_TOLERANCE = 0.01  # AIST++ videos are 59.94 fps: accept 60 +- 1 %


@dataclass(frozen=True)
class AistJob:
    sequence: str
    split: str
    annotations: Path
    music: Path | None
    videos: Path | None
    out: Path
    camera: str
    seconds: float
    sr: int
    extractor: str
    visual_dir: Path | None
    stale_before: int | None = None  # files older than this (mtime ns) are rewritten, see build.start


def load_pickle(path) -> dict:
    """An annotation pickle, through the restricted unpickler (plain data and numpy arrays only:
    a crafted .pkl cannot run code)."""
    path = Path(path)
    data = load_data_pickle(path)
    if not isinstance(data, dict):
        raise UserError(f"pickle holds a {type(data).__name__}, expected a dict", path)
    return data


def _require(data, key, path):
    if key not in data:
        raise UserError(f"pickle lacks key '{key}' (has {sorted(map(str, data))})", path)
    return _numeric(data[key], key, path)


def _numeric(value, key, path, shape=None) -> np.ndarray:
    """``value`` as a numeric array, or a one-line error (a string, a dict or an object array
    in an annotation would otherwise fail deep inside numpy with a traceback). ``shape``: the
    trailing dimensions it must have, after a leading frame axis (None = any size there)."""
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):
        a = None
    if a is None or a.dtype.kind not in "iuf":
        if not isinstance(value, (np.ndarray, list, tuple)):
            kind = f"a {type(value).__name__}"
        elif a is None or a.dtype.kind == "O":
            kind = f"a {type(value).__name__} of mixed or non-numeric items"
        else:
            kind = f"a {a.dtype} array"
        raise UserError(f"'{key}' holds {kind}, expected numbers", path)
    if shape is not None and (a.ndim != len(shape) or any(w is not None and w != g for w, g in zip(shape, a.shape))):
        want = "(" + ", ".join("N" if w is None else str(w) for w in shape) + ")"
        raise UserError(f"'{key}' has shape {a.shape}, expected {want}", path)
    return a


@functools.lru_cache(maxsize=4)
def _music(path: str, sr: int):
    return load_audio(path, sr)[0]


def _camera_index(camera: str) -> int:
    return int(camera[1:]) - 1  # keypoints2d views are ordered c01..c09


def _rel(col, split, sid, ext="npy"):
    return f"{col}/{split}/{sid}.{ext}"


def build_sequence(job: AistJob):
    """Segments of one sequence: ``(segments, skips, stats)``; problems become skips."""
    try:
        return _build_sequence(job)
    except UserError as exc:
        return [], [{"item": job.sequence, "reason": str(exc)}], {}


def _build_sequence(job: AistJob):
    seq, ann = job.sequence, job.annotations
    name = parse_aist_name(seq)
    if name is None:
        raise UserError("not an AIST++ sequence name")
    video = video_name(seq, job.camera)
    mpath = ann / "motions" / f"{seq}.pkl"
    motion = load_pickle(mpath)
    poses = _require(motion, "smpl_poses", mpath)
    if not (poses.ndim == 2 and poses.shape[1] == 72 or poses.ndim == 3 and poses.shape[1:] == (24, 3)):
        raise UserError(f"'smpl_poses' has shape {poses.shape}, expected (N, 72) or (N, 24, 3)", mpath)
    n = len(poses)
    wins = windows(n, fps=MOTION_FPS, seconds=job.seconds)
    if not wins:
        raise UserError(f"shorter than one segment ({n} frames < {int(MOTION_FPS * job.seconds)} at 60 fps)", mpath)
    k3path = ann / "keypoints3d" / f"{seq}.pkl"
    k3d = load_pickle(k3path)
    k3key = "keypoints3d_optim" if "keypoints3d_optim" in k3d else "keypoints3d"
    if k3key not in k3d:
        raise UserError("pickle has neither 'keypoints3d_optim' nor 'keypoints3d'", k3path)
    # COCO-17 (the format dataset.json declares): a pickle with other joints would be written as is.
    joints = _numeric(k3d[k3key], k3key, k3path, shape=(None, 17, 3))
    k2path = ann / "keypoints2d" / f"{seq}.pkl"
    kp2 = _require(load_pickle(k2path), "keypoints2d", k2path)
    if kp2.ndim != 4 or kp2.shape[2:] != (17, 3):
        raise UserError(f"keypoints2d has shape {kp2.shape}, expected (9, N, 17, 3)", k2path)
    need = wins[-1].end_frame
    for arr, path, label in ((joints, k3path, "keypoints3d"), (kp2[0] if kp2.ndim == 4 else kp2, k2path, "keypoints2d")):
        if arr.ndim < 2 or len(arr) < need:
            raise UserError(f"{label} has {len(arr) if arr.ndim else 0} frames but the motion needs {need} "
                            "(fps mismatch or truncated annotation)", path)
    if kp2.ndim != 4 or kp2.shape[0] <= _camera_index(job.camera):
        raise UserError(f"keypoints2d has shape {kp2.shape}, expected (9, N, 17, 3)", k2path)
    size = int(round(MOTION_FPS * job.seconds))
    ext = get_extractor(job.extractor)
    ids = [f"{video}_seg{w.index}" for w in wins]
    n_audio = int(round(job.seconds * job.sr))
    kp_frames = int(round(KEYPOINT_FPS * job.seconds))
    expect = {"audio": (n_audio, job.sr), "motion": (size, 219), "keypoints": (kp_frames, 17, 3),
              "joints3d": (size, 17, 3), "visual": (ext.dim,)}
    cols = [c for c in expect if c != "visual" or ext.dim]
    rels = [{c: _rel(c, job.split, sid, "wav" if c == "audio" else "npy") for c in cols} for sid in ids]
    done = [all(store.is_valid(job.out / r[c], expect[c], job.stale_before) for c in cols) for r in rels]
    segs = [Segment(sid, job.split, seq, name.genre, name.music_id, *w.seconds(MOTION_FPS), **r)
            for sid, w, r in zip(ids, wins, rels)]
    stats = {"segments_resumed": sum(done)}
    if all(done):
        return segs, [], stats
    # Everything the missing segments need is checked before anything is written.
    vpath = job.videos / f"{video}.mp4" if job.videos else None
    skips, dropped = [], set()
    if ext.needs_video or job.music is None:
        from .video import probe

        if vpath is None:
            raise UserError("--videos is needed (visual extractor or audio from the video)")
        vinfo = probe(vpath)
        if abs(vinfo.fps - MOTION_FPS) > MOTION_FPS * FPS_TOLERANCE:
            raise UserError(f"video at {vinfo.fps:.3f} fps, expected {MOTION_FPS:g}", vpath)
        # A window past the video's end would get flow of nothing (a vector of zeros) and,
        # demuxed, zero-padded audio: such segments are skipped and listed instead.
        covered = vinfo.duration + 1.0 / vinfo.fps
        dropped = {i for i, w in enumerate(wins) if w.end_frame / MOTION_FPS > covered}
        if len(dropped) == len(wins):
            raise UserError(f"video is {vinfo.duration:.2f} s, shorter than the first segment "
                            f"(the motion lasts {n / MOTION_FPS:.2f} s)", vpath)
        skips += [uncovered(ids[i], wins[i].seconds(MOTION_FPS), vpath, f"the video ends at {vinfo.duration:.2f} s")
                  for i in sorted(dropped)]
    audio_src = job.music / f"{name.music_id}.wav" if job.music else vpath
    if not audio_src.is_file():
        raise UserError("missing music file", audio_src)
    y = _music(str(audio_src), job.sr)
    feats = _rotation_features(motion, poses, mpath)
    todo = [i for i, d in enumerate(done) if not d and i not in dropped]
    spans = [wins[i].seconds(MOTION_FPS) for i in todo]
    vis = extract(ext, video=vpath, windows=spans, ids=[ids[i] for i in todo], folder=job.visual_dir)
    padded = 0
    cam = kp2[_camera_index(job.camera)]
    for i, v in zip(todo, vis):
        w, r = wins[i], rels[i]
        if ext.dim and v is None:  # the decoded video stopped short of what probe reported
            dropped.add(i)
            skips.append(uncovered(ids[i], w.seconds(MOTION_FPS), vpath, "the video has no frames for part of it"))
            continue
        arrays = {"motion": feats[w.start_frame:w.end_frame],
                  "keypoints": cam[w.start_frame:w.end_frame:2].astype(np.float32),
                  "joints3d": joints[w.start_frame:w.end_frame].astype(np.float32)}
        if v is not None:
            arrays["visual"] = v.astype(np.float32)
        bad = nonfinite(ids[i], arrays)
        if bad is not None:
            dropped.add(i)
            skips.append(bad)
            continue
        clip, pad = cut_audio(y, job.sr, w.start_frame / MOTION_FPS, job.seconds)
        padded += pad > 0
        store.save_wav(job.out / r["audio"], clip, job.sr)
        for col, a in arrays.items():
            if col != "visual":
                store.save_npy(job.out / r[col], a)
        if v is not None:
            store.save_npy(job.out / r["visual"], v.astype(np.float32))
    stats.update(segments_resumed=sum(d and i not in dropped for i, d in enumerate(done)),
                 segments_written=sum(i not in dropped for i in todo), segments_audio_padded=padded)
    return [s for i, s in enumerate(segs) if i not in dropped], skips, stats


def _rotation_features(motion, poses, path):
    scaling = _require(motion, "smpl_scaling", path)
    if scaling.size < 1:
        raise UserError("'smpl_scaling' is empty", path)
    try:
        with np.errstate(all="ignore"):  # a zero or NaN scale gives non-finite motion: skipped per segment
            return aistpp_motion_features(poses, _require(motion, "smpl_trans", path), scaling)
    except ValueError as exc:
        raise UserError(str(exc), path) from None


def build_aistpp(annotations, out, *, music=None, videos=None, splits=("train", "test"), camera="c01",
                 seconds=2.0, sr=22050, visual="flow-stats", visual_dir=None, drop_ignored=False,
                 strict=False, workers=1, progress=False, limit=None):
    """Build the dataset into ``out``; returns ``(segments, skips, stats)``."""
    ann = Path(annotations)
    if not (ann / "motions").is_dir():
        raise UserError("not an AIST++ annotations folder (no motions/)", ann)
    for label, p in (("music", music), ("videos", videos), ("visual-dir", visual_dir)):
        if p is not None and not Path(p).is_dir():
            raise UserError(f"--{label} is not a folder", p)
    if not (len(camera) == 3 and camera[0] == "c" and camera[1:].isdigit() and 1 <= int(camera[1:]) <= 9):
        raise UserError(f"camera '{camera}' is not one of c01..c09")
    check_seconds(seconds, KEYPOINT_FPS)  # 30-fps keypoints are every second 60-fps frame
    ext = get_extractor(visual)
    if music is None and videos is None:
        raise UserError("give --music (the AIST music wavs) or --videos (audio is then demuxed)")
    jobs = []
    for split in splits:
        seqs = aistpp_split(split, splits_dir=ann / "splits", ignore_file=ann / "ignore_list.txt",
                            drop_ignored=drop_ignored)
        seqs = seqs[:limit] if limit else seqs
        jobs += [AistJob(s, split, ann, Path(music) if music else None, Path(videos) if videos else None,
                         Path(out), camera, seconds, sr, visual, Path(visual_dir) if visual_dir else None)
                 for s in seqs]
    options = {"splits": list(splits), "camera": camera, "segment_seconds": seconds, "sample_rate": sr,
               "visual": ext.describe(), "drop_ignored": drop_ignored, "limit": limit,
               "audio": "music wav cut at the window, peak-normalised to 0.95" if music else
                        "demuxed from the camera's video, peak-normalised to 0.95"}
    source = {"root": str(ann), "music": str(music) if music else None, "videos": str(videos) if videos else None}
    stale_before = start(out, "aistpp", options, source)
    jobs = [replace(j, stale_before=stale_before) for j in jobs]
    # Sequences sharing a music track run together so the decoded track is reused.
    jobs.sort(key=lambda j: (j.sequence.split("_")[4:5], j.sequence))
    results = run_jobs(build_sequence, jobs, workers=workers, progress=progress, desc="aistpp")
    info = DatasetInfo(name="aistpp", sample_rate=sr, segment_seconds=seconds, motion_fps=MOTION_FPS,
                       motion_shape=[int(round(MOTION_FPS * seconds)), 219], keypoints_format="coco17",
                       keypoints_fps=KEYPOINT_FPS, joints3d_format="coco17", joints3d_fps=MOTION_FPS,
                       visual_extractor=ext.name, visual_dim=ext.dim)
    return finish(out, results, info, strict=strict, options=options, source=source)
