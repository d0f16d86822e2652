"""Miniature raw datasets in the official layouts, for tests and the demo.

AIST++: ``annotations/{motions,keypoints2d,keypoints3d}/<seq>.pkl`` with the real keys and
shapes, ``annotations/splits/crossmodal_{train,test}.txt``, ``annotations/ignore_list.txt``,
``music/<music_id>.wav`` (clicks on the nominal tempo's beats) and ``videos/<video>.mp4``
(64x64 at 60 fps, a blob that stops on each beat, with the music as AAC audio).
The 3-D joints stop on the music beats too, so motion-music alignment is high on this set.

TikTok: ``videos/<video_id>.mp4`` (64x64 at 30 fps with audio), ``annotations.csv``
(video_id, music_id, duration, dancers, sha256) and OpenPose JSON
``openpose/<video>_<frame:012d>_keypoints.json``.
"""
from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np

from ..io.audio import write_audio
from ..io.cache import file_digest
from ..io.nofollow import write_own_file
from ..synth.synthetic import click_track, joints_with_beats
from . import shipped_list
from .segments import parse_aist_name, video_name
from .video import write_mp4


def beat_times(bpm: float, seconds: float, offset: float = 0.25):
    return list(np.arange(offset, seconds - 0.05, 60.0 / bpm))


def _blob_frames(speed_curve, size=64, seed=0):
    """Frames of a bright square whose horizontal position integrates ``speed_curve``."""
    rng = np.random.default_rng(seed)
    pos = np.cumsum(speed_curve)
    pos = (pos / max(1e-9, pos.max())) if pos.max() > 0 else pos
    base = rng.integers(20, 60, size=(size, size, 3), dtype=np.uint8)
    for p in pos:
        img = base.copy()
        x = int(4 + p * (size - 20)) if np.isfinite(p) else 4
        img[size // 3:size // 3 + 14, x:x + 12] = (250, 220, 40)
        yield img


SYNTH_MARKER = ".d2m-bench-synth"  # a folder holding it was filled by `data synth`: it may be refilled


def claim_folder(out: Path) -> None:
    """The miniature uses real sequence and video names: written over a real raw dataset it would
    replace real annotation files. So ``out`` must be new, empty, or an earlier miniature; it is
    marked before the first file is written, so a killed run can be rerun."""
    from ..errors import UserError

    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()) and not (out / SYNTH_MARKER).is_file():
        raise UserError("folder is not empty and was not written by `d2m-bench data synth` (its files could be "
                        "replaced by synthetic ones); give a new or empty folder", out)
    out.mkdir(parents=True, exist_ok=True)
    write_own_file(out / SYNTH_MARKER, "written by d2m-bench data synth; the folder may be rewritten by it\n",
                   what="synth marker")


def synth_aistpp(out, *, n_train=3, n_test=2, segments=(3, 2), remainder=37, sr=44100, seed=0):
    """Write the raw AIST++ miniature into ``out`` and return it.

    Sequence names are real ones from the shipped cross-modal lists; sequence i of a split has
    ``segments[i % len(segments)]`` full 2-s windows plus ``remainder`` frames.
    """
    out = Path(out)
    claim_folder(out)
    ann = out / "annotations"
    rng = np.random.default_rng(seed)
    chosen = {"train": shipped_list("crossmodal_train.txt")[:n_train],
              "test": shipped_list("crossmodal_test.txt")[:n_test]}
    (ann / "splits").mkdir(parents=True, exist_ok=True)
    for split, seqs in chosen.items():
        (ann / "splits" / f"crossmodal_{split}.txt").write_text("\n".join(seqs) + "\n")
    (ann / "ignore_list.txt").write_text("gBR_sFM_cAll_d04_mBR4_ch07\n")
    (ann / "cameras").mkdir(exist_ok=True)
    all_seqs = [s for seqs in chosen.values() for s in seqs]
    (ann / "cameras" / "mapping.txt").write_text("".join(f"{s} setting1\n" for s in all_seqs))
    written_music = set()
    for i, seq in enumerate(all_seqs):
        name = parse_aist_name(seq)
        n = segments[i % len(segments)] * 120 + remainder
        seconds = n / 60.0
        beats = beat_times(name.tempo_bpm, seconds + 4.0)
        if name.music_id not in written_music:  # the track outlasts every dance on it
            write_audio(out / "music" / f"{name.music_id}.wav", click_track(beats, sr=sr, duration=seconds + 4.0), sr)
            written_music.add(name.music_id)
        beat_frames = [int(round(t * 60)) for t in beats if t * 60 < n - 1]
        joints = joints_with_beats(beat_frames, frames=n, joints=17, seed=i) * 100.0  # cm, like AIST++
        motion = {"smpl_poses": rng.normal(0, 0.3, (n, 72)).astype(np.float32),
                  "smpl_trans": (rng.normal(0, 1, (n, 3)).cumsum(0) + 90).astype(np.float32),
                  "smpl_scaling": np.array([93.0], np.float32), "smpl_loss": 1.5}
        kp2 = np.concatenate([rng.uniform(0, 1920, (9, n, 17, 1)), rng.uniform(0, 1080, (9, n, 17, 1)),
                              rng.uniform(0.5, 1, (9, n, 17, 1))], -1).astype(np.float32)
        files = {"motions": motion,
                 "keypoints3d": {"keypoints3d": joints, "keypoints3d_optim": joints.copy()},
                 "keypoints2d": {"keypoints2d": kp2, "det_scores": np.ones((9, n), np.float32),
                                 "timestamps": (np.arange(n) * 16666).astype(np.int64)}}
        for folder, data in files.items():
            (ann / folder).mkdir(parents=True, exist_ok=True)
            with open(ann / folder / f"{seq}.pkl", "wb") as fh:
                pickle.dump(data, fh)
        speed = np.abs(np.diff(joints[:, 0, 0], prepend=joints[0, 0, 0]))
        track = click_track(beats, sr=22050, duration=seconds)
        write_mp4(out / "videos" / f"{video_name(seq, 'c01')}.mp4", _blob_frames(speed, seed=i), 60,
                  audio=track, sr=22050)
    return out


def synth_tiktok(out, *, n_train=2, n_test=1, segments=(3, 2), seconds_extra=0.6, seed=0):
    """Write the raw TikTok miniature into ``out`` and return it (ids from the shipped lists)."""
    from . import list_stems

    out = Path(out)
    claim_folder(out)
    pick = []
    for name, count in (("tiktok_audio_train_segment.txt", n_train), ("tiktok_audio_test_segment.txt", n_test)):
        vids = list(dict.fromkeys(s.rsplit("_seg", 1)[0] for s in list_stems(name)))
        pick += vids[:count]
    rows = []
    for i, vid in enumerate(pick):
        duration = segments[i % len(segments)] * 2.0 + seconds_extra
        n = int(round(duration * 30))
        bpm = 100.0 + 10 * i
        beats = beat_times(bpm, duration)
        track = click_track(beats, sr=22050, duration=duration)
        frames_beats = [int(round(t * 30)) for t in beats if t * 30 < n - 1]
        traj = joints_with_beats(frames_beats, frames=n, joints=25, seed=i)
        speed = np.abs(np.diff(traj[:, 0, 0], prepend=traj[0, 0, 0]))
        path = out / "videos" / f"{vid}.mp4"
        write_mp4(path, _blob_frames(speed, seed=i), 30, audio=track, sr=22050)
        jdir = out / "openpose"
        jdir.mkdir(parents=True, exist_ok=True)
        xy = 32 + 10 * traj[:, :, :2]
        for f in range(n):
            kp = np.concatenate([xy[f], np.full((25, 1), 0.9)], 1).round(3).reshape(-1).tolist()
            people = [] if f == 5 else [{"person_id": [-1], "pose_keypoints_2d": kp}]
            (jdir / f"{vid}_{f:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
        rows.append({"video_id": vid, "music_id": str(10 + i), "duration": f"{duration:.3f}",
                     "dancers": "1", "sha256": file_digest(path)})
    with open(out / "annotations.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out
