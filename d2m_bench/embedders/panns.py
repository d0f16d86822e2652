"""PANNs CNN14 (Kong et al., IEEE/ACM TASLP 2020) through the ``panns_inference`` library.

The network is ``panns_inference.models.Cnn14``, the library's own class, built with the
settings of the published checkpoint and loaded from a file the toolkit resolved
(``d2m_bench.embedders.weights``), read with ``weights_only`` loading. Two published settings:

- ``panns-cnn14``: 32 kHz, window 1024, hop 320, 64 mel bands 50-14000 Hz
  (``Cnn14_mAP=0.431.pth``, what ``panns_inference.AudioTagging`` loads, av-benchmark's PANNs);
- ``panns-cnn14-16k``: 16 kHz, window 512, hop 160, 64 mel bands 50-8000 Hz
  (``Cnn14_16k_mAP=0.438.pth``, audioldm_eval's PANNs for FD, KL and IS).

One forward pass per clip over the whole clip (as ``AudioTagging.inference`` does) gives two
outputs, both cached together: ``embedding`` (2048 values after fc1 and ReLU, the FD
embedding of audioldm_eval and av-benchmark) and ``logits`` (527 AudioSet class scores before
the sigmoid, ``fc_audioset(embedding)``; sigmoid(logits) is the library's ``clipwise_output``),
which KL and IS turn into label distributions. Clips of equal length share a batch; in eval
mode the network has no cross-example state (BatchNorm uses running statistics, dropout is
off), so batching changes no value beyond float rounding (tested against the library's call).

Why ``panns_inference.models`` is imported without the package's ``__init__``: that
``__init__`` imports ``panns_inference.config``, which runs ``wget`` at import time to fetch
the AudioSet label CSV into ``~/panns_data`` (and ``AudioTagging`` downloads a checkpoint
when its file is smaller than 300 MB). ``models.py`` itself needs only torch, torchlibrosa and
matplotlib; nothing of the skipped ``__init__`` is used here.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import numpy as np

from ..errors import UserError
from .base import audio_config, equal_length_batches

N_CLASSES = 527
EMBEDDING_DIM = 2048
LAYERS = ("embedding", "logits")
SETTINGS = {
    "panns-cnn14": {"sample_rate": 32000, "window_size": 1024, "hop_size": 320, "mel_bins": 64, "fmin": 50,
                    "fmax": 14000, "classes_num": N_CLASSES},
    "panns-cnn14-16k": {"sample_rate": 16000, "window_size": 512, "hop_size": 160, "mel_bins": 64, "fmin": 50,
                        "fmax": 8000, "classes_num": N_CLASSES},
}
# Shortest input the network accepts: five 2x2 poolings of the frame axis need 32 frames.
MIN_FRAMES = 32


def library_version() -> str:
    from ..versions import package_version

    return package_version("panns_inference")


def models_module():
    """``panns_inference.models`` without running the package ``__init__`` (module doc)."""
    if "panns_inference.models" in sys.modules:
        return sys.modules["panns_inference.models"]
    spec = importlib.util.find_spec("panns_inference")
    if spec is None:
        raise UserError("the panns-cnn14 embedder needs panns_inference and torchlibrosa: "
                        "pip install 'd2m-bench[panns]' (docs/genre-fad.md, Installing the backends)")
    inserted = "panns_inference" not in sys.modules
    if inserted:
        bare = types.ModuleType("panns_inference")
        bare.__path__ = list(spec.submodule_search_locations)
        bare.__spec__ = spec
        sys.modules["panns_inference"] = bare
    try:
        return importlib.import_module("panns_inference.models")
    except ImportError as exc:
        raise UserError(f"panns_inference.models cannot be imported ({exc}); pip install 'd2m-bench[panns]'") from None
    finally:
        if inserted:  # a later `import panns_inference` runs the real __init__ (and reuses .models)
            del sys.modules["panns_inference"]


def build_model(name: str = "panns-cnn14"):
    """The library's Cnn14 with the published settings of ``name`` (random initial weights)."""
    return models_module().Cnn14(**SETTINGS[name])


def state_dict_of(obj, path):
    """The model state dict inside a checkpoint: ``{"model": state}`` as published, or the state itself."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        return obj["model"]
    if isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        return obj
    raise UserError("not a PANNs checkpoint (expected {'model': state_dict} or a state dict)", path)


class PannsCnn14Embedder:
    """Per-clip CNN14 outputs: cached rows are (1, 2048 + 527) = [embedding | logits]."""

    layers = LAYERS
    hop = None  # one vector per clip
    dim = EMBEDDING_DIM

    def __init__(self, weights, *, name="panns-cnn14", batch_size=16, device="cpu"):
        import torch

        from ..io.cache import file_digest
        from .weights import load_state_strict, load_weights

        if name not in SETTINGS:
            raise UserError(f"unknown PANNs setting '{name}' ({', '.join(SETTINGS)})")
        self.name = name
        self.settings = SETTINGS[name]
        self.sample_rate = self.settings["sample_rate"]
        self.weights_path = str(weights)
        self.weights_sha256 = file_digest(weights)
        state = state_dict_of(load_weights(weights), weights)
        self.model = build_model(name)
        load_state_strict(self.model, state, weights, f"a {name}")
        self.model.eval().to(device)
        self.device = device
        self.batch_size = int(batch_size)
        self.cache_dim = EMBEDDING_DIM + N_CLASSES
        self.min_samples = (MIN_FRAMES - 1) * self.settings["hop_size"]
        self._torch = torch

    def cache_config(self) -> dict:
        return {"embedder": self.name, "settings": self.settings, "weights_sha256": self.weights_sha256,
                "audio": audio_config(), "library": "panns_inference " + library_version(),
                "pad_short_to": self.min_samples, "output": "embedding+logits", "version": 1}

    def meta(self) -> dict:
        from .weights import is_official

        return {"embedder": self.name, "weights": self.weights_path, "weights_sha256": self.weights_sha256,
                "weights_official": is_official(self.name, self.weights_sha256), "postprocess": "none",
                "settings": self.settings, "dim": self.dim, "n_classes": N_CLASSES, "hop": self.hop,
                "library": "panns_inference " + library_version(), "layers": list(self.layers)}

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            emb = self.model(x, None)["embedding"]
            logits = self.model.fc_audioset(emb)  # eval mode: embedding is fc1's ReLU output itself
            return torch.cat([emb, logits], dim=1).cpu().numpy()

    def embed_waveforms(self, waveforms) -> list:
        """Per-clip (1, 2048 + 527) float32 rows; clips of one length go through the network together."""
        clips = [np.asarray(y, dtype=np.float32) for y in waveforms]
        clips = [np.pad(y, (0, self.min_samples - len(y))) if len(y) < self.min_samples else y for y in clips]
        out = [None] * len(clips)
        for chunk in equal_length_batches(clips, self.batch_size):
            for i, row in zip(chunk, self._forward(np.stack([clips[i] for i in chunk]))):
                out[i] = row[None].astype(np.float32)
        return out

    def select(self, per_example, layer: str) -> np.ndarray:
        if layer == "embedding":
            return per_example[:, :EMBEDDING_DIM]
        if layer == "logits":
            return per_example[:, EMBEDDING_DIM:]
        raise UserError(f"unknown {self.name} layer '{layer}' ({', '.join(LAYERS)})")

    def finalize(self, vectors):
        return np.asarray(vectors, dtype=np.float64)
