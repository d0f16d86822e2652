"""MIDI -> audio with one pinned synthesizer, so symbolic baselines differ only in their notes.

Every MIDI is rendered by the FluidSynth command-line program with one General MIDI soundfont
(Debian ``fluid-soundfont-gm``: ``/usr/share/sounds/sf2/FluidR3_GM.sf2``, SHA-256 recorded),
reverb and chorus off (``-R 0 -C 0``: their random modulation is the only source of run-to-run
differences), at the protocol's sample rate, then mixed to mono (channel mean) and trimmed or
zero-padded to the segment length. No normalisation: the synthesizer's own level is kept.

    fluidsynth -ni -q -R 0 -C 0 -g GAIN -r SR -F out.wav SOUNDFONT in.mid
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import UserError

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
# SHA-256 of that file in Debian's fluid-soundfont-gm 3.1-5.3, the soundfont docs/baselines.md pins.
# Another file still renders (a user may have reasons), but its runs say soundfont_pinned: false.
PINNED_SHA256 = "74594e8f4250680adf590507a306655a299935343583256f3b722c48a1bc1cb0"
# FluidSynth's own default master gain; recorded in provenance so renders can be reproduced.
DEFAULT_GAIN = 0.2


def fluidsynth_path() -> str | None:
    return shutil.which("fluidsynth")


@lru_cache(maxsize=1)
def fluidsynth_version() -> str:
    exe = fluidsynth_path()
    if exe is None:
        return ""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip() if out else ""


def resolve_soundfont(soundfont=None) -> Path:
    """The soundfont to use: ``soundfont``, else $D2M_SOUNDFONT, else the Debian FluidR3 GM."""
    path = Path(soundfont or os.environ.get("D2M_SOUNDFONT") or DEFAULT_SOUNDFONT)
    if not path.is_file():
        raise UserError("soundfont not found (install the Debian package fluid-soundfont-gm, "
                        "`make sysdeps`, or pass --soundfont)", path)
    return path


@lru_cache(maxsize=4)
def _digest(path: str, size: int, mtime: float) -> str:
    from ..io.cache import file_digest

    return file_digest(path)


def synth_info(soundfont=None, *, gain: float = DEFAULT_GAIN) -> dict:
    """What a render depends on: program version, soundfont path, SHA-256 and whether that is the
    pinned one, settings. Warns (one line on stderr) when the soundfont is not the pinned file."""
    path = resolve_soundfont(soundfont)
    real = path.resolve()
    st = real.stat()
    digest = _digest(str(real), st.st_size, st.st_mtime)
    pinned = digest == PINNED_SHA256
    if not pinned:
        sys.stderr.write(f"d2m-bench: warning: soundfont {path} has SHA-256 {digest[:12]}..., not the pinned "
                         f"FluidR3_GM {PINNED_SHA256[:12]}...: its renders are not comparable with pinned runs\n")
    return {"synth": "fluidsynth", "synth_version": fluidsynth_version(), "soundfont": str(real),
            "soundfont_sha256": digest, "soundfont_pinned": pinned, "pinned_sha256": PINNED_SHA256,
            "reverb": False, "chorus": False, "gain": gain, "mono": "channel mean"}


def fit_length(y, length: int):
    """Trim or zero-pad the last axis of ``y`` to exactly ``length`` samples."""
    y = np.asarray(y, dtype=np.float32)
    if y.shape[-1] >= length:
        return y[..., :length]
    pad = [(0, 0)] * (y.ndim - 1) + [(0, length - y.shape[-1])]
    return np.pad(y, pad)


def render_midi(midi_path, *, sr: int = 22050, length: int | None = None, soundfont=None,
                gain: float = DEFAULT_GAIN) -> np.ndarray:
    """Render ``midi_path`` to mono float32 at ``sr`` (trimmed/padded to ``length`` samples)."""
    exe = fluidsynth_path()
    if exe is None:
        raise UserError("fluidsynth is not installed (Debian: apt-get install fluidsynth fluid-soundfont-gm, "
                        "or `make sysdeps`)")
    midi_path = Path(midi_path)
    if not midi_path.is_file():
        raise UserError("no such MIDI file", midi_path)
    sf2 = resolve_soundfont(soundfont)
    with tempfile.TemporaryDirectory(prefix="d2m-render-") as tmp:
        wav = Path(tmp) / "out.wav"
        cmd = [exe, "-ni", "-q", "-R", "0", "-C", "0", "-g", str(gain), "-r", str(int(sr)),
               "-F", str(wav), str(sf2), str(midi_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        # FluidSynth exits 0 when the soundfont does not load and falls back to its default
        # soundfont: the audio would not come from the file whose hash is recorded.
        if "failed to load" in (proc.stderr + proc.stdout).lower():
            raise UserError("fluidsynth could not load this soundfont (not a valid SF2?)", sf2)
        if proc.returncode != 0 or not wav.is_file():
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise UserError(f"fluidsynth failed ({msg[-1] if msg else f'exit {proc.returncode}'})", midi_path)
        y, file_sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if file_sr != sr:  # fluidsynth honours -r; guard against a build that does not
        raise UserError(f"fluidsynth wrote {file_sr} Hz instead of {sr} Hz", midi_path)
    y = y.mean(axis=1)
    return fit_length(y, length) if length is not None else y


def write_notes_midi(path, notes, *, program: int = 0, qpm: float = 120.0) -> None:
    """Write ``notes`` = [(pitch, start_s, end_s, velocity), ...] as a one-track MIDI file."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(qpm))
    inst = pretty_midi.Instrument(program=int(program))
    for pitch, start, end, velocity in notes:
        inst.notes.append(pretty_midi.Note(velocity=int(velocity), pitch=int(pitch), start=float(start), end=float(end)))
    pm.instruments.append(inst)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))


def stretch_midi(src, dst, factor: float) -> float:
    """Write ``src`` with every event time multiplied by ``factor``; returns the new end time (s).

    CMT writes its MIDI at 120 qpm and plays it back with ``factor = 120 / tempo`` (its
    ``midi2mp3.py`` maps [0, end] onto [0, end * 120 / tempo] with pretty_midi.adjust_times).
    """
    import pretty_midi

    if not factor > 0:
        raise UserError(f"time-stretch factor must be positive, got {factor}", src)
    try:
        pm = pretty_midi.PrettyMIDI(str(src))
    except Exception as exc:  # pretty_midi raises bare Exceptions and mido errors
        raise UserError(f"unreadable MIDI ({exc.__class__.__name__}: {exc})", src) from None
    end = pm.get_end_time()
    if end > 0:
        pm.adjust_times([0.0, end], [0.0, end * factor])
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(dst))
    return end * factor
