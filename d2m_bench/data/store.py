"""Atomic per-segment file writes and cheap validity checks (for resumable builds)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ..io.atomic import replacing
from ..io.audio import write_audio


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


def shape_matches(shape, expected) -> bool:
    """``shape`` (None: unreadable) against ``expected`` (None entries match any size)."""
    if shape is None or len(shape) != len(expected):
        return False
    return all(e is None or e == s for e, s in zip(expected, shape))


def npy_finite(path):
    """True if a .npy holds only finite numbers (non-float dtypes always do), False if not, None
    if it cannot be read as plain numbers (object arrays are not loaded: they would unpickle)."""
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if a.dtype.kind not in "biufc":
        return None
    if a.dtype.kind in "fc":
        # In blocks of rows: a memory map is then read a piece at a time.
        flat = a.reshape(-1) if a.ndim else a.reshape(1)
        step = 1 << 22
        return all(bool(np.isfinite(flat[i:i + step]).all()) for i in range(0, len(flat), step))
    return True


def wav_finite(path) -> bool:
    """Integer PCM cannot hold NaN or inf; float sound files are read and checked."""
    try:
        info = sf.info(str(path))
        if info.subtype not in ("FLOAT", "DOUBLE"):
            return True
        y, _ = sf.read(str(path), dtype="float64", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError):
        return False
    return bool(np.isfinite(y).all())


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
    if not shape_matches(npy_shape(path), expected):
        return False
    # A truncated file has a valid header but too few bytes; one holding NaN (left by an older
    # build) is rewritten, and the rewrite then skips the segment if its source is non-finite.
    return npy_finite(path) is True
