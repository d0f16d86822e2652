"""The fixed, versioned battery of controlled transformations of the ground truth.

Each transformation turns a gt clip (mono, at the protocol's sample rate) into a "prediction"
whose relation to the gt is known by construction; scoring it against the gt shows what a
metric can see. Every transformation is seeded (per clip id) and keeps the gt's length, so the
length policy never acts. Parameters are recorded with the results (:func:`describe`).

Version 1:

| name | what |
|---|---|
| identity | the gt file itself, byte for byte |
| shuffled-gt | another clip's gt (Sattolo derangement, seeded) |
| shift-50ms ... shift-500ms | the gt delayed by 50, 100, 250, 500 ms (zeros in front, the end cut) |
| stretch-5pct, stretch-10pct | librosa.effects.time_stretch at rate 1.05 / 1.10 (phase vocoder), zero-padded to length |
| metronome | 30-ms 1-kHz clicks at the gt's tempo and beat phase (librosa.beat.beat_track: tempo, first beat) |
| metronome-2x | the same at double tempo |
| white-noise | Gaussian noise, std 0.1 (-20 dBFS RMS) |
| pink-noise | 1/f-power noise (white noise shaped by 1/sqrt(f) in the FFT domain), RMS 0.1 |
| silence | zeros |
| gain-20db | the gt times 0.1 |
| lowpass-2khz | scipy.signal Butterworth low-pass, order 8, 2 kHz, zero phase (sosfiltfilt) |
| mp3-64k | encoded to MP3 at 64 kbit/s with PyAV's libmp3lame (the codec eval decodes mp3 with) |
| reversed | the gt played backwards |
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

BATTERY_VERSION = 1
SEED = 0
NOISE_RMS = 0.1
CLICK = {"freq_hz": 1000.0, "seconds": 0.03}

TRANSFORMS = {
    "identity": {"kind": "identity"},
    "shuffled-gt": {"kind": "shuffle", "rule": "Sattolo cyclic derangement over the clips in id order"},
    "shift-50ms": {"kind": "shift", "seconds": 0.05},
    "shift-100ms": {"kind": "shift", "seconds": 0.1},
    "shift-250ms": {"kind": "shift", "seconds": 0.25},
    "shift-500ms": {"kind": "shift", "seconds": 0.5},
    "stretch-5pct": {"kind": "stretch", "rate": 1.05, "library": "librosa.effects.time_stretch"},
    "stretch-10pct": {"kind": "stretch", "rate": 1.10, "library": "librosa.effects.time_stretch"},
    "metronome": {"kind": "metronome", "multiple": 1, "beats": "librosa.beat.beat_track tempo and first beat",
                  "click": CLICK},
    "metronome-2x": {"kind": "metronome", "multiple": 2, "beats": "librosa.beat.beat_track tempo and first beat",
                     "click": CLICK},
    "white-noise": {"kind": "noise", "color": "white", "rms": NOISE_RMS},
    "pink-noise": {"kind": "noise", "color": "pink", "rms": NOISE_RMS},
    "silence": {"kind": "silence"},
    "gain-20db": {"kind": "gain", "db": -20.0},
    "lowpass-2khz": {"kind": "lowpass", "cutoff_hz": 2000.0, "order": 8,
                     "library": "scipy.signal.butter(output='sos') + sosfiltfilt"},
    "mp3-64k": {"kind": "mp3", "bit_rate": 64000, "library": "PyAV libmp3lame"},
    "reversed": {"kind": "reverse"},
}


def describe(seed: int = SEED) -> dict:
    """The battery as recorded in a validity result."""
    return {"version": BATTERY_VERSION, "seed": seed, "transforms": TRANSFORMS}


def fit(y, n: int) -> np.ndarray:
    """``y`` as float32, trimmed or zero-padded to ``n`` samples."""
    from ..synth.render import fit_length

    return fit_length(y, n)


def shift(y, sr: int, seconds: float) -> np.ndarray:
    d = int(round(seconds * sr))
    return fit(np.concatenate([np.zeros(d, np.float32), y]), len(y))


def stretch(y, rate: float) -> np.ndarray:
    import librosa

    return fit(librosa.effects.time_stretch(np.asarray(y, np.float32), rate=rate), len(y))


def beat_grid(y, sr: int, multiple: int = 1) -> np.ndarray:
    """Click times at the clip's tempo (times ``multiple``) through its first tracked beat."""
    import librosa

    tempo, beats = librosa.beat.beat_track(y=np.asarray(y, np.float32), sr=sr, units="time")
    bpm = float(np.atleast_1d(tempo)[0])
    if not np.isfinite(bpm) or bpm <= 0:
        return np.zeros(0)
    period = 60.0 / bpm / multiple
    phase = float(beats[0]) % period if len(beats) else 0.0
    return np.arange(phase, len(y) / sr, period)


def clicks(times, sr: int, n: int) -> np.ndarray:
    """``n`` samples of 30-ms 1-kHz clicks starting at ``times`` (s)."""
    from ..synth.synthetic import click_track

    return fit(click_track(times, sr=sr, duration=n / sr, freq=CLICK["freq_hz"], click_seconds=CLICK["seconds"]), n)


def metronome(y, sr: int, multiple: int) -> np.ndarray:
    return clicks(beat_grid(y, sr, multiple), sr, len(y))


def noise(n: int, rng, color: str) -> np.ndarray:
    """White or pink noise of RMS ``NOISE_RMS``; pink: power 1/f (amplitude 1/sqrt(f)), DC removed."""
    white = rng.normal(0.0, 1.0, n)
    if color == "pink":
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=float)
        f[0] = 1.0
        spec = spec / np.sqrt(f)
        spec[0] = 0.0
        white = np.fft.irfft(spec, n)
    rms = float(np.sqrt(np.mean(white ** 2))) or 1.0
    return (white * (NOISE_RMS / rms)).astype(np.float32)


def lowpass(y, sr: int, cutoff: float, order: int) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    sos = butter(order, cutoff, btype="low", fs=sr, output="sos")
    return sosfiltfilt(sos, np.asarray(y, np.float64)).astype(np.float32)


def write_mp3(path: Path, y, sr: int, bit_rate: int) -> None:
    """MP3 through PyAV's libmp3lame encoder (the library eval decodes mp3 with)."""
    import av

    from ..io.encode import encode_mono

    with av.open(str(path), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=sr, layout="mono")
        stream.bit_rate = bit_rate
        encode_mono(container, stream, np.clip(np.asarray(y, np.float32), -1.0, 1.0), sr, hop=1152)


def write_transform(name: str, clips, gts, out: Path, *, sr: int, seed: int = SEED) -> Path:
    """Write transformation ``name`` of every clip into ``out/name/``; returns that folder.

    ``clips`` is [(id, gt path)] in id order and ``gts`` the decoded gt signals at ``sr``."""
    import shutil

    from ..baselines.references import derangement, segment_rng
    from ..io.audio import write_audio

    spec = TRANSFORMS[name]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    kind = spec["kind"]
    perm = derangement(len(clips), seed) if kind == "shuffle" else None
    for i, (cid, path) in enumerate(clips):
        y = gts[i]
        if kind == "identity":
            shutil.copyfile(path, folder / f"{cid}{Path(path).suffix}")
            continue
        if kind == "shuffle":
            out_y = fit(gts[perm[i]], len(y))
        elif kind == "shift":
            out_y = shift(y, sr, spec["seconds"])
        elif kind == "stretch":
            out_y = stretch(y, spec["rate"])
        elif kind == "metronome":
            out_y = metronome(y, sr, spec["multiple"])
        elif kind == "noise":
            out_y = noise(len(y), segment_rng(seed, cid), spec["color"])
        elif kind == "silence":
            out_y = np.zeros(len(y), np.float32)
        elif kind == "gain":
            out_y = (y * 10.0 ** (spec["db"] / 20.0)).astype(np.float32)
        elif kind == "lowpass":
            out_y = lowpass(y, sr, spec["cutoff_hz"], spec["order"])
        elif kind == "mp3":
            write_mp3(folder / f"{cid}.mp3", y, sr, spec["bit_rate"])
            continue
        elif kind == "reverse":
            out_y = np.ascontiguousarray(y[::-1])
        else:  # pragma: no cover - TRANSFORMS is fixed
            raise ValueError(kind)
        write_audio(folder / f"{cid}.wav", out_y, sr, subtype="FLOAT")
    return folder
