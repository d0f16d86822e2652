"""How a file's audio reaches an embedder: the ``loading`` table of an embedder section.

Peer tools differ more in how they load audio than in their formulas (issue 22: 11 % on PANNs
FD between audioldm_eval's loading and d2m-bench's). Each step is a parameter, chosen by name:

``mix``        ``"mean"`` (channel mean, librosa.to_mono) or ``"first"`` (the first channel, as
               audioldm_eval's ``audio[0:1]``); ignored with ``resample = "sox"`` (sox mixes).
``remove_dc``  subtract the clip's mean before resampling (audioldm_eval's ``audio - audio.mean()``).
``resample``   ``"soxr_hq"`` (librosa's default, d2m-bench's), ``"kaiser_best"`` / ``"kaiser_fast"``
               (resampy, as torchvggish and frechet-audio-distance call it through librosa),
               ``"torchaudio_sinc_hann"`` (``torchaudio.functional.resample``'s default:
               Hann-windowed sinc, 6 zero crossings, roll-off 0.99, float32, as audioldm_eval
               calls it; `sinc_resample`), or ``"sox"`` (the ``sox`` program converting the file to
               the embedder's rate, one channel, 16 bits, as fadtk does before embedding, with
               SoX's repeatable dither, ``-R``: see `sox_convert`).
``quantize``   ``"none"`` or ``"int16"``: the samples as a 16-bit file holds them (fadtk reads its
               sox output with ``soundfile.read(dtype="int16") / 32768``).
``min_seconds`` zero-pad at the end to at least this long (audioldm_eval 2 s: ``pad_short_audio``;
               fadtk VGGish 1 s: ``enforce_min_len``, whose length is ``ceil(min_seconds * sr)``).

The default table is d2m-bench's own loading (decoder, channel mean, soxr_hq); a protocol
without a ``loading`` table keeps its hash and its cached embeddings.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

DEFAULT = {"mix": "mean", "remove_dc": False, "resample": "soxr_hq", "quantize": "none", "min_seconds": 0.0}
RESAMPLERS = ("soxr_hq", "kaiser_best", "kaiser_fast", "torchaudio_sinc_hann", "sox")
MIXES = ("mean", "first")
QUANTIZE = ("none", "int16")


# The peers' loading, as the named peer protocols set it (protocols/audioldm-eval.toml, fadtk.toml).
PRESETS = {
    "audioldm-eval": {**DEFAULT, "mix": "first", "remove_dc": True, "resample": "torchaudio_sinc_hann",
                      "min_seconds": 2.0},
    "fadtk": {**DEFAULT, "resample": "sox", "quantize": "int16"},
}


def key_suffix(loading) -> str:
    """``""`` for d2m-bench's own loading, else ``:loading-<preset name or 10 hex>`` for a
    comparable key."""
    p = loading_table(loading)
    if p == DEFAULT:
        return ""
    for name, preset in PRESETS.items():
        if p == preset:
            return f":loading-{name}"
    import hashlib
    import json

    return ":loading-" + hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:10]


def loading_table(table) -> dict:
    """A section's ``loading`` table over the defaults."""
    return {**DEFAULT, **(table or {})}


def is_default(loading: dict) -> bool:
    return loading_table(loading) == DEFAULT


def validate(check, where: str, table) -> None:
    """Protocol validation of an embedder section's ``loading`` table."""
    if table is None:
        return
    if not isinstance(table, dict):
        check.fail(f"[{where}] must be a table of audio loading settings ({', '.join(DEFAULT)})")
        return
    for key in table:
        check.choice(where, key, tuple(DEFAULT))
    p = loading_table(table)
    check.choice(f"{where}.mix", p["mix"], MIXES)
    check.choice(f"{where}.resample", p["resample"], RESAMPLERS)
    check.choice(f"{where}.quantize", p["quantize"], QUANTIZE)
    if not isinstance(p["remove_dc"], bool):
        check.fail(f"{where}.remove_dc = {p['remove_dc']!r} must be true or false")
    check.number(f"{where}.min_seconds", p["min_seconds"], strict=False)


def cache_config(loading: dict) -> dict:
    """What enters an embedding's cache key: nothing for the default (old entries stay valid),
    else the table and the versions of the programs it runs."""
    p = loading_table(loading)
    if p == DEFAULT:
        return {}
    out = {"loading": p}
    if p["resample"] == "sox":
        out["sox"] = sox_version()
    elif p["resample"] in ("kaiser_best", "kaiser_fast"):
        from ..versions import package_versions

        out.update(package_versions(("resampy", "librosa")))
    elif p["resample"] == "torchaudio_sinc_hann":
        import torch

        out["torch"] = torch.__version__
    return out


def load(path, sr: int, loading: dict | None = None) -> np.ndarray:
    """The mono float32 samples of ``path`` at ``sr`` Hz as the ``loading`` table says."""
    p = loading_table(loading)
    if p == DEFAULT:  # d2m-bench's own loading, the path every earlier result took
        from .audio import load_audio

        return load_audio(path, sr)[0]
    if p["resample"] == "sox":
        y = sox_convert(path, sr)  # int16 values / 32768
    else:
        from .audio import decode_audio

        y, native = decode_audio(path)
        y = np.mean(y, axis=0) if p["mix"] == "mean" else y[0]
        y = np.ascontiguousarray(y, np.float32)  # contiguous: torch reduces a strided row in another order
        if p["remove_dc"]:
            y = y - _mean32(y)
        if native != sr:
            y = resample(y, native, sr, p["resample"])
        if p["quantize"] == "int16":
            y = np.round(np.clip(y, -1.0, 32767 / 32768) * 32768.0) / 32768.0
    need = math.ceil(p["min_seconds"] * sr)
    if len(y) < need:
        y = np.concatenate([y, np.zeros(need - len(y), y.dtype)])
    return np.ascontiguousarray(y, dtype=np.float32)


def _mean32(y: np.ndarray) -> np.float32:
    """A float32 signal's mean as torch reduces it (audioldm_eval's ``audio.mean()``), when torch
    is there: numpy's pairwise float32 sum differs from it in the last bit."""
    try:
        import torch
    except ImportError:
        return y.mean(dtype=np.float32)
    return np.float32(torch.from_numpy(y).mean().item())


def resample(y: np.ndarray, native: int, sr: int, how: str) -> np.ndarray:
    if how == "torchaudio_sinc_hann":
        return sinc_resample(y, native, sr)
    import librosa

    return librosa.resample(y, orig_sr=native, target_sr=sr, res_type=how)


def sinc_resample(y: np.ndarray, native: int, sr: int, *, zeros: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """Band-limited resampling by a Hann-windowed sinc, computed as ``torchaudio.functional.resample``
    computes it for a float32 signal (its default method), which audioldm_eval calls; written here
    because torchaudio has no build for the torch d2m-bench pins. Equal to a literal port of
    torchaudio's code in the tests.

    With g = gcd, the rates reduce to a = native / g and b = sr / g; the cut-off is
    c = min(a, b) * rolloff; output j of every block of b takes the input samples around
    j * a / b through the kernel sinc(pi c t) * cos^2(pi c t / (2 zeros)) * c / a, t clipped to
    +-zeros / c, evaluated in float32 as torchaudio does for a float32 signal, then one strided
    convolution; the output is ceil(len * b / a) samples long."""
    import torch

    if native == sr:
        return y
    g = math.gcd(int(native), int(sr))
    a, b = int(native) // g, int(sr) // g
    cutoff = min(a, b) * rolloff
    width = math.ceil(zeros * a / cutoff)
    f32 = torch.float32
    taps = torch.arange(-width, width + a, dtype=f32)[None, None] / a
    t = (torch.arange(0, -b, -1, dtype=f32)[:, None, None] / b + taps) * cutoff
    t = t.clamp(-zeros, zeros)
    hann = torch.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    kernel = torch.where(t == 0, torch.tensor(1.0, dtype=f32), t.sin() / t) * (hann * (cutoff / a))
    x = torch.nn.functional.pad(torch.as_tensor(np.asarray(y, np.float32))[None], (width, width + a))
    out = torch.nn.functional.conv1d(x[:, None], kernel, stride=a).transpose(1, 2).reshape(-1)
    n = math.ceil(b * len(y) / a)
    return out[:n].numpy()


def sox_program() -> str:
    import shutil

    from ..errors import UserError

    path = shutil.which("sox")
    if path is None:
        raise UserError("loading.resample = \"sox\" needs the sox program (apt-get install sox; brew install sox)")
    return path


@lru_cache(maxsize=1)
def sox_version() -> str:
    """The sox program's version (part of the cache key): asked once per process."""
    import subprocess

    out = subprocess.run([sox_program(), "--version"], capture_output=True, text=True)
    words = (out.stdout or out.stderr).split()
    return words[-1] if words else "unknown"


def sox_convert(path, sr: int) -> np.ndarray:
    """``sox -R FILE -r SR -c 1 -b 16 OUT.wav`` (fadtk's conversion) read back as int16 / 32768.

    Going to 16 bits, sox dithers. fadtk runs sox without ``-R``, so its dither noise is drawn
    anew on every conversion (two conversions of one file differ by up to 2 steps of 1/32768;
    fadtk repeats its numbers only through its folder of converted files). ``-R`` draws SoX's
    fixed random numbers instead: the same dither, the same samples on every run."""
    import subprocess
    import tempfile
    from pathlib import Path

    import soundfile as sf

    from ..errors import AudioError

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "converted.wav"
        proc = subprocess.run([sox_program(), "-R", str(path), "-r", str(sr), "-c", "1", "-b", "16", str(out)],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            last = (proc.stderr.strip().splitlines() or ["sox failed"])[-1]
            raise AudioError(f"sox cannot convert it: {last}", path)
        data, _ = sf.read(str(out), dtype="int16")
    return (np.asarray(data, np.float64).reshape(len(data), -1)[:, 0] / 32768.0).astype(np.float32)
