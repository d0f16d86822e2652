"""A weight-free embedder for offline use: MFCC and chroma statistics per 0.96-s example.

Each non-overlapping 0.96-s example (22050 Hz mono) becomes the mean and standard deviation
over its STFT frames of MFCC 1-19 (c0, the loudness term, is left out so that level does not
decide the genre) and of the 12 chroma bins: 2 x (19 + 12) = 62 values. librosa defaults
otherwise (n_fft 2048, hop 512, 128 mel bands for the MFCC, STFT chroma).
Its numbers are not VGGish numbers: results carry the embedder name, and the protocol hash
differs, so they are never ranked together with VGGish rows.
"""
from __future__ import annotations

import numpy as np

from .base import audio_config

SAMPLE_RATE = 22050
EXAMPLE_SECONDS = 0.96
N_MFCC = 20
HOP = 512
N_FFT = 2048
CONFIG = {"sample_rate": SAMPLE_RATE, "example_seconds": EXAMPLE_SECONDS, "n_mfcc": N_MFCC,
          "mfcc_used": "1..19", "chroma": "stft", "n_fft": N_FFT, "hop": HOP, "stats": ["mean", "std"]}


class MfccChromaEmbedder:
    name = "mfcc-chroma"
    sample_rate = SAMPLE_RATE
    hop = EXAMPLE_SECONDS  # one vector per non-overlapping 0.96-s example
    dim = 2 * (N_MFCC - 1 + 12)
    weights_sha256 = None
    layers = ("stats",)  # one output: protocols' VGGish layer settings do not apply

    def __init__(self, **_ignored):
        self.example = int(round(EXAMPLE_SECONDS * SAMPLE_RATE))

    def cache_config(self) -> dict:
        import librosa

        return {"embedder": self.name, "config": CONFIG, "librosa": librosa.__version__,
                "audio": audio_config(), "version": 1}

    def meta(self) -> dict:
        return {"embedder": self.name, "weights": None, "weights_sha256": None, "postprocess": "none",
                "config": CONFIG, "dim": self.dim}

    def _examples(self, y) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        if len(y) < self.example:
            y = np.pad(y, (0, self.example - len(y)))
        n = len(y) // self.example
        return y[: n * self.example].reshape(n, self.example)

    def embed_waveforms(self, waveforms) -> list:
        import librosa

        out = []
        for y in waveforms:
            ex = self._examples(y)
            mfcc = librosa.feature.mfcc(y=ex, sr=SAMPLE_RATE, n_mfcc=N_MFCC, n_fft=N_FFT, hop_length=HOP)[:, 1:]
            chroma = librosa.feature.chroma_stft(y=ex, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP)
            feats = np.concatenate([mfcc, chroma], axis=1)  # (n, 31, frames)
            out.append(np.concatenate([feats.mean(-1), feats.std(-1)], axis=1).astype(np.float32))
        return out

    def select(self, per_example, layer: str):
        return per_example

    def finalize(self, vectors):
        return np.asarray(vectors, dtype=np.float64)
