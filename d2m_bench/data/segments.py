"""Segment windows, AIST++ names and the split logic that reproduces the D2M-GAN lists.

D2M-GAN cuts every sequence into consecutive non-overlapping windows from t = 0 and drops
the remainder: a sequence of N frames at ``fps`` gives K = floor(N / (fps * seconds))
segments ``<video>_seg1 .. <video>_segK``.

What the test against the shipped 86 / 6632 lists shows, and what it cannot: without the
AIST++ motion files, the frame count of each sequence is derived from the lists themselves
(K listed segments -> K * 120 + r frames, r in 0..119). Given such counts, the split files,
the camera renaming, the 1..K numbering and the dropping of the remainder reproduce the
lists exactly (no missing, extra or duplicate id). Whether the real frame counts give
exactly those K, i.e. that D2M-GAN used floor(N / 120) of the real motion, needs the real
data and is not checked here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .dataset import GENRES
from ..errors import UserError
from . import shipped_list

_NAME = re.compile(r"^(g[A-Z]{2})_(s[A-Z]{2})_(c\d{2}|cAll)_(d\d{2})_(m([A-Z]{2})(\d))_(ch\d{2})$")


@dataclass(frozen=True)
class Window:
    index: int  # k, from 1
    start_frame: int
    end_frame: int  # exclusive

    def seconds(self, fps: float) -> tuple[float, float]:
        return self.start_frame / fps, self.end_frame / fps


def windows(n_frames: int, *, fps: float = 60.0, seconds: float = 2.0) -> list[Window]:
    """Non-overlapping windows of ``round(fps * seconds)`` frames from frame 0, remainder dropped."""
    size = int(round(fps * seconds))
    if size <= 0:
        raise ValueError(f"segment of {seconds} s at {fps} fps has no frame")
    return [Window(k + 1, k * size, (k + 1) * size) for k in range(int(n_frames) // size)]


def segment_id(video: str, k: int) -> str:
    return f"{video}_seg{k}"


@dataclass(frozen=True)
class AistName:
    genre: str  # gBR
    situation: str  # sBM / sFM
    camera: str  # c01 or cAll
    dancer: str
    music_id: str  # mBR0
    choreo: str

    @property
    def tempo_bpm(self) -> float:
        """Nominal tempo from the music id: 80 + 10 d, house 110 + 5 d (mint preprocessing)."""
        d = int(self.music_id[-1])
        return 110.0 + 5 * d if self.music_id[1:3] == "HO" else 80.0 + 10 * d


def parse_aist_name(name: str) -> AistName | None:
    """Fields of an AIST++ sequence or video name (a ``_segK`` suffix is ignored); None if not one."""
    m = _NAME.match(re.sub(r"_seg\d+$", "", Path(name).name))
    if not m or m.group(1) not in GENRES:
        return None
    return AistName(m.group(1), m.group(2), m.group(3), m.group(4), m.group(5), m.group(8))


def video_name(sequence: str, camera: str) -> str:
    """``gBR_sBM_cAll_d04_mBR0_ch01`` + ``c01`` -> ``gBR_sBM_c01_d04_mBR0_ch01``."""
    return sequence.replace("_cAll_", f"_{camera}_")


def read_split_file(path) -> list[str]:
    path = Path(path)
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise UserError(f"unreadable split file ({exc.strerror})", path) from None


def aistpp_split(split: str, *, splits_dir=None, ignore_file=None, drop_ignored=False) -> list[str]:
    """Sequence names (``cAll``) of the cross-modal ``split`` (train, val or test).

    ``splits_dir`` holds ``crossmodal_<split>.txt`` (the annotations' ``splits/``); the shipped
    copy is used when it is None or lacks the file. D2M-GAN kept the 28 train sequences that
    are in ``ignore_list.txt`` (its 6632 train segments include them), so the ignore list is
    applied only with ``drop_ignored``.
    """
    name = f"crossmodal_{split}.txt"
    if splits_dir is not None and (Path(splits_dir) / name).is_file():
        seqs = read_split_file(Path(splits_dir) / name)
    else:
        try:
            seqs = shipped_list(name)
        except FileNotFoundError:
            raise UserError(f"no split '{split}' (crossmodal train, val, test)", splits_dir) from None
    if drop_ignored:
        ignored = set(read_split_file(ignore_file) if ignore_file and Path(ignore_file).is_file()
                      else shipped_list("ignore_list.txt"))
        seqs = [s for s in seqs if s not in ignored]
    return seqs


def plan_segments(sequences, frame_counts: dict, *, camera="c01", fps=60.0, seconds=2.0):
    """(sequence, video, window) for every full window; sequences without one are returned apart.

    ``frame_counts`` maps a sequence name to its number of motion frames at ``fps``.
    Returns ``(planned, too_short)``.
    """
    planned, too_short = [], []
    for seq in sequences:
        video = video_name(seq, camera)
        wins = windows(frame_counts[seq], fps=fps, seconds=seconds)
        if not wins:
            too_short.append(seq)
        planned += [(seq, video, w) for w in wins]
    return planned, too_short


def genre_onehot(ids) -> "list[list[int]]":
    """One-hot genre rows in the D2M-GAN column order (``GENRES``) for AIST++ ids."""
    rows = []
    for sid in ids:
        parsed = parse_aist_name(sid)
        if parsed is None:
            raise ValueError(f"not an AIST++ name: {sid}")
        rows.append([int(g == parsed.genre) for g in GENRES])
    return rows
