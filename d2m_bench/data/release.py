"""Ingest the preprocessed D2M-GAN release (``audio_s2/``, ``motion_s2/``, ``video_s2/`` + lists).

``root`` is the folder holding the segment lists (``aist_audio_test_segment.txt`` ...; paths in
them resolve against it, as the upstream loader does) or, without lists there, the folder
holding ``aistplus/`` / ``tiktok/`` or the ``audio_s2/`` folders themselves; the shipped
lists are used then. Audio is re-read at 22050 Hz mono, cut or zero-padded to 2 s and
peak-normalised to 0.95 (what the upstream test loader feeds the model); motion and the
2048-d visual vectors are copied (visual extractor ``precomputed``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.audio import load_audio
from .dataset import DatasetInfo, Segment
from ..errors import UserError
from ..io.names import name_problem
from . import shipped_list, store
from .build import cut_audio, finish, run_jobs, start
from .segments import parse_aist_name

KINDS = {"aistpp": ("aist", "aistplus", (120, 219), 60.0), "tiktok": ("tiktok", "tiktok", (60, 75), 30.0)}


def _lists(root: Path, kind: str, split: str):
    """Line-aligned (audio, motion, video) paths for one split."""
    prefix, folder, _, _ = KINDS[kind]
    names = [f"{prefix}_{m}_{split}_segment.txt" for m in ("audio", "motion", "video")]
    if all((root / n).is_file() for n in names):
        base, lines = root, [[x.strip() for x in (root / n).read_text().splitlines() if x.strip()] for n in names]
    else:
        data_root = root if (root / "audio_s2").is_dir() else root / folder
        if not (data_root / "audio_s2").is_dir():
            raise UserError(f"no {names[0]} and no {folder}/audio_s2/ here (not a D2M-GAN release folder)", root)
        base = data_root
        audio = [str(Path(*Path(a).parts[Path(a).parts.index(folder) + 1:])) for a in shipped_list(names[0])]
        lines = [audio, [a.replace("audio_s2", "motion_s2")[:-4] + ".npy" for a in audio],
                 [a.replace("audio_s2", "video_s2")[:-4] + ".npy" for a in audio]]
    if len({len(x) for x in lines}) != 1:
        raise UserError(f"the {split} audio/motion/video lists differ in length", root)
    return [tuple(base / p for p in triple) for triple in zip(*lines)]


def _ingest(job):
    (audio, motion, video), split, kind, out, sr, seconds, stale_before = job
    sid = audio.stem
    if name_problem(sid):  # the name becomes the segment id and the output file names
        return [], [{"item": sid[:80], "reason": f"{audio}: file name unusable as a segment id ({name_problem(sid)})"}], {}
    _, _, mshape, _ = KINDS[kind]
    rels = {"audio": f"audio/{split}/{sid}.wav", "motion": f"motion/{split}/{sid}.npy",
            "visual": f"visual/{split}/{sid}.npy"}
    if kind == "tiktok":
        rels["keypoints"] = f"keypoints/{split}/{sid}.npy"
    name = parse_aist_name(sid) if kind == "aistpp" else None
    seq = sid.rsplit("_seg", 1)[0]
    k = int(sid.rsplit("_seg", 1)[1]) if "_seg" in sid else 1
    seg = Segment(sid, split, seq.replace("_c01_", "_cAll_") if name else seq, name.genre if name else "",
                  name.music_id if name else "", (k - 1) * seconds, k * seconds, **rels)
    expect = {"audio": (int(round(seconds * sr)), sr), "motion": mshape, "visual": (2048,),
              "keypoints": (mshape[0], 25, 3)}
    if all(store.is_valid(out / rels[c], expect[c], stale_before) for c in rels):
        return [seg], [], {"segments_resumed": 1}
    try:
        y = load_audio(audio, sr)[0]
        clip, _ = cut_audio(y, sr, 0.0, seconds)
        m = _load(motion).reshape(-1)
        if m.size != mshape[0] * mshape[1]:
            raise UserError(f"motion has {m.size} values, expected {mshape[0]}x{mshape[1]}", motion)
        v = _load(video).reshape(-1)
        if v.size != 2048:
            raise UserError(f"visual feature has {v.size} values, expected 2048", video)
        for arr, path, what in ((m, motion, "motion"), (v, video, "visual feature")):
            if not np.isfinite(arr).all():
                raise UserError(f"{what} holds non-finite values (NaN or inf)", path)
    except UserError as exc:
        return [], [{"item": sid, "reason": str(exc)}], {}
    store.save_wav(out / rels["audio"], clip, sr)
    store.save_npy(out / rels["motion"], m.reshape(mshape))
    store.save_npy(out / rels["visual"], v)
    if kind == "tiktok":
        store.save_npy(out / rels["keypoints"], m.reshape(mshape[0], 25, 3))
    return [seg], [], {"segments_written": 1}


def _load(path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False).astype(np.float32)
    except FileNotFoundError:
        raise UserError("missing file", path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"unreadable .npy ({exc})", path) from None


def build_release(root, out, *, kind="aistpp", splits=("train", "test"), sr=22050, strict=False,
                  workers=1, progress=False, limit=None):
    root = Path(root)
    if not root.is_dir():
        raise UserError("release folder not found", root)
    _, _, mshape, fps = KINDS[kind]
    seconds = mshape[0] / fps
    lists = [(split, _lists(root, kind, split)) for split in splits]  # checked before start() touches out
    options = {"kind": kind, "splits": list(splits), "sample_rate": sr, "limit": limit,
               "audio": "release wav re-read at the sample rate, cut/padded to the segment, peak 0.95",
               "visual": {"name": "precomputed", "source": "release video_s2 .npy (I3D, 2048-d)"}}
    source = {"root": str(root)}
    stale_before = start(out, kind, options, source)
    jobs = [(t, split, kind, Path(out), sr, seconds, stale_before)
            for split, triples in lists for t in (triples[:limit] if limit else triples)]
    results = run_jobs(_ingest, jobs, workers=workers, progress=progress, desc=f"{kind}-release")
    info = DatasetInfo(name=kind, sample_rate=sr, segment_seconds=seconds, motion_fps=fps, motion_shape=list(mshape),
                       keypoints_format="body25" if kind == "tiktok" else "", keypoints_fps=fps if kind == "tiktok" else 0.0,
                       joints3d_format="", joints3d_fps=0.0, visual_extractor="precomputed", visual_dim=2048)
    return finish(out, results, info, strict=strict, options=options, source=source)
