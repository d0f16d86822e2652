"""Atomic per-segment file writes and cheap validity checks (for resumable builds)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ..atomic import replacing
from ..audio import write_audio


def save_npy(path, array) -> None:
    with replacing(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(array), allow_pickle=False)


def save_wav(path, y, sr: int) -> None:
    with replacing(path, suffix=".wav") as tmp:
        write_audio(tmp, y, sr)


def npy_shape(path):
    """Shape from the .npy header (None if missing or not a readable .npy); data is not read."""
    try:
        with open(path, "rb") as fh:
            major, _ = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, _ = read(fh)
        return tuple(shape)
    except (OSError, ValueError, EOFError):
        return None


def wav_frames(path):
    """(frames, samplerate) of a sound file, or None if missing/unreadable."""
    try:
        info = sf.info(str(path))
        return info.frames, info.samplerate
    except (OSError, RuntimeError, sf.LibsndfileError):
        return None


def is_valid(path, expected, stale_before=None) -> bool:
    """``expected`` is a shape tuple for .npy (None entries match anything) or (frames, sr) for .wav.

    ``stale_before`` (ns): a file last modified before it is invalid (left by a build with other
    parameters; see ``build.start``)."""
    path = Path(path)
    if stale_before is not None:
        try:
            if path.stat().st_mtime_ns < stale_before:
                return False
        except OSError:
            return False
    if path.suffix == ".wav":
        return wav_frames(path) == tuple(expected)
    shape = npy_shape(path)
    if shape is None or len(shape) != len(expected):
        return False
    if not all(e is None or e == s for e, s in zip(expected, shape)):
        return False
    # A truncated file has a valid header but too few bytes.
    try:
        np.load(path, mmap_mode="r")
    except (ValueError, OSError):
        return False
    return True
