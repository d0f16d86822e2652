"""EnCodec (Defossez et al., TMLR 2023) encoder embeddings through the ``encodec`` library.

``encodec-24k``: the 24 kHz mono model (``EncodecModel.encodec_model_24khz``, causal SEANet
encoder, weight norm), built by the library with ``pretrained=False`` and loaded from the file
the toolkit resolved (``encodec_24khz-d7cc33bc.th``; the 8 hex digits are the start of its
SHA-256, which the library checks too). The embedding is the encoder's continuous output
before quantisation, 128 values per frame of 320 samples (13.3 ms, 75 Hz): fadtk's
``encodec-emb`` family. The 24 kHz model has no segmenting or normalisation, so a whole clip
goes through the encoder at once, as ``model.encoder(x)`` does in the library.

Why a stand-in ``torchaudio`` while importing: ``encodec/utils.py`` imports torchaudio at the
top for ``convert_audio`` (resampling) and ``save_audio``, two functions this backend never
calls (d2m-bench decodes and resamples itself). torchaudio cannot always be installed beside the
user's torch, so, only when it is absent, ``encodec`` is imported under ``stand_ins`` (an inert
torchaudio whose every object raises ImportError when used; gone from ``sys.modules`` after).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys

import numpy as np

from ..errors import UserError
from .base import audio_config, equal_length_batches

SAMPLE_RATE = 24000
FRAME = 320  # encoder stride (ratios 8, 5, 4, 2)
DIM = 128
LAYERS = ("encoder",)


def library_version() -> str:
    from ..versions import package_version

    return package_version("encodec")


_TORCHAUDIO_WHY = ("torchaudio is not installed; d2m-bench never calls the encodec functions that use it "
                   "(convert_audio, save_audio)")


def encodec_module():
    """``import encodec``, with the torchaudio stand-in of the module doc when torchaudio is absent."""
    from .stand_ins import stand_ins

    if "encodec" in sys.modules:
        return sys.modules["encodec"]
    if importlib.util.find_spec("encodec") is None:
        raise UserError("the encodec-24k embedder needs encodec and einops: pip install 'd2m-bench[encodec]' "
                        "(docs/genre-fad.md, Installing the backends)")
    try:
        with stand_ins({"torchaudio": _TORCHAUDIO_WHY}):
            return importlib.import_module("encodec")
    except ImportError as exc:
        raise UserError(f"encodec cannot be imported ({exc}); pip install 'd2m-bench[encodec]'") from None


def build_model():
    """The library's 24 kHz EnCodec model with random initial weights (``pretrained=False``)."""
    return encodec_module().EncodecModel.encodec_model_24khz(pretrained=False)


class EncodecEmbedder:
    """Per-frame EnCodec encoder outputs, (n_frames, 128) float32 per clip."""

    name = "encodec-24k"
    sample_rate = SAMPLE_RATE
    hop = FRAME / SAMPLE_RATE
    dim = DIM
    layers = LAYERS
    # Measured on 2 idle cores, 16 two-second clips: 11.4 clips/s one clip per pass, 17.0 two per
    # pass, 11.4 four, 7.0 sixteen (the encoder's activations outgrow the caches): pairs.
    default_batch_size = 2

    def __init__(self, weights, *, name="encodec-24k", batch_size=default_batch_size, device="cpu"):
        import torch

        from ..io.cache import file_digest
        from .weights import load_state_strict, load_weights

        self.weights_path = str(weights)
        self.weights_sha256 = file_digest(weights)
        state = load_weights(weights)
        if not isinstance(state, dict):
            raise UserError("not a state dict", weights)
        self.model = build_model()
        load_state_strict(self.model, state, weights, "an encodec-24k")
        self.model.eval().to(device)
        self.device = device
        self.batch_size = int(batch_size)
        self._torch = torch

    def cache_config(self) -> dict:
        return {"embedder": self.name, "sample_rate": SAMPLE_RATE, "output": "encoder", "frame": FRAME,
                "weights_sha256": self.weights_sha256, "audio": audio_config(),
                "library": "encodec " + library_version(), "version": 1}

    def meta(self) -> dict:
        from .weights import is_official

        return {"embedder": self.name, "weights": self.weights_path, "weights_sha256": self.weights_sha256,
                "weights_official": is_official(self.name, self.weights_sha256), "postprocess": "none",
                "dim": self.dim, "hop": self.hop, "sample_rate": SAMPLE_RATE,
                "library": "encodec " + library_version(), "layers": list(self.layers)}

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))[:, None].to(self.device)
            return self.model.encoder(x).transpose(1, 2).cpu().numpy()  # (N, frames, 128)

    def embed_waveforms(self, waveforms) -> list:
        """Per-clip (n_frames, 128) float32; clips of one length share a batch. A clip shorter
        than one frame is zero-padded to one frame."""
        clips = [np.asarray(y, dtype=np.float32) for y in waveforms]
        clips = [np.pad(y, (0, FRAME - len(y))) if len(y) < FRAME else y for y in clips]
        out = [None] * len(clips)
        for chunk in equal_length_batches(clips, self.batch_size):
            for i, frames in zip(chunk, self._forward(np.stack([clips[i] for i in chunk]))):
                out[i] = np.ascontiguousarray(frames, dtype=np.float32)
        return out

    def select(self, per_example, layer: str) -> np.ndarray:
        if layer != "encoder":
            raise UserError(f"unknown encodec-24k layer '{layer}' (encoder)")
        return per_example

    def finalize(self, vectors):
        return np.asarray(vectors, dtype=np.float64)
