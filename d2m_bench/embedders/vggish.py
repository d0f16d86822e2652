"""VGGish (Hershey et al., ICASSP 2017) in PyTorch, loading the public port's state dict.

Front end (the AudioSet VGGish recipe, as in the TensorFlow release and its PyTorch port):
16 kHz mono; frames of 25 ms (400 samples) every 10 ms (160), periodic Hann window,
|rfft| with n_fft = 512; 64 HTK-mel triangles between 125 and 7500 Hz
(mel(f) = 1127 ln(1 + f / 700), DC bin weight 0); log(mel + 0.01); non-overlapping
examples of 96 frames (0.96 s) x 64 bands. The network maps each example to 128 values.

Two outputs of the last fully connected layer are offered (protocol ``genre.layer`` and
``genre.fad_layer``): ``pre_relu``, the layer's linear output, which is the embedding of the
TensorFlow release and what fadtk and frechet-audio-distance use for FAD (both drop the port's
final ReLU by default); and ``relu``, the port's default output after its final ReLU. The
pre-ReLU values are computed and cached; ``relu`` is max(0, pre-ReLU), bit for bit what the
ReLU module returns.

The parameter names and shapes equal those of ``vggish-10086976.pth`` (features.{0,3,6,8,11,13},
embeddings.{0,2,4}); the optional PCA file ``vggish_pca_params-970ea276.pth`` holds
``pca_eigen_vectors`` (128, 128) and ``pca_means`` (128,). PCA here is the float projection
E (x - m) only: the 8-bit quantisation of the AudioSet release is never applied, because
distances between quantised codes are not meaningful for retrieval.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError
from .base import audio_config

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512  # next power of two above the window
N_MELS = 64
FMIN, FMAX = 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s of 10-ms frames
EMBEDDING_DIM = 128
# Shortest input that yields one example: 96 frames need 400 + 95 * 160 samples. Shorter
# clips are zero-padded to this length rather than dropped (recorded in the config).
MIN_SAMPLES = WINDOW + (EXAMPLE_FRAMES - 1) * HOP
FRONT_END = {"sample_rate": SAMPLE_RATE, "window": WINDOW, "hop": HOP, "n_fft": N_FFT, "n_mels": N_MELS,
             "fmin": FMIN, "fmax": FMAX, "log_offset": LOG_OFFSET, "example_frames": EXAMPLE_FRAMES,
             "window_fn": "periodic_hann", "mel_scale": "htk", "pad_short_to": MIN_SAMPLES}

LAYERS = ("pre_relu", "relu")
_CONV_PLAN = (64, "pool", 128, "pool", 256, 256, "pool", 512, 512, "pool")
_FC_PLAN = (512 * 6 * 4, 4096, 4096, EMBEDDING_DIM)


def _hz_to_mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_weights(*, sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangular HTK-mel weights; bands equally spaced in mel,
    each triangle peaking at 1 on its centre; the DC bin gets no weight."""
    bin_mel = _hz_to_mel(np.linspace(0.0, sr / 2.0, n_fft // 2 + 1))[:, None]
    edges = np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - left) / (centre - left)
    falling = (right - bin_mel) / (right - centre)
    w = np.clip(np.minimum(rising, falling), 0.0, None)
    w[0] = 0.0
    return w


_MEL = mel_weights()
_HANN = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(WINDOW) / WINDOW)  # periodic, not symmetric


def log_mel(y) -> np.ndarray:
    """(frames, 64) float64 log-mel spectrogram of 16-kHz mono audio; frames = 1 + (n - 400) // 160."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) < WINDOW:
        return np.zeros((0, N_MELS))
    frames = np.lib.stride_tricks.sliding_window_view(y, WINDOW)[::HOP]
    magnitude = np.abs(np.fft.rfft(frames * _HANN, n=N_FFT))
    return np.log(magnitude @ _MEL + LOG_OFFSET)


def waveform_examples(y) -> np.ndarray:
    """(n_examples, 96, 64) float32 log-mel examples of a 16-kHz mono waveform.

    Frames past the last whole example are dropped (as in VGGish); a clip shorter than
    one example is zero-padded to ``MIN_SAMPLES`` first so that every clip has a vector.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {y.shape}")
    if len(y) < MIN_SAMPLES:
        y = np.pad(y, (0, MIN_SAMPLES - len(y)))
    spec = log_mel(y)
    n = len(spec) // EXAMPLE_FRAMES
    return spec[: n * EXAMPLE_FRAMES].reshape(n, EXAMPLE_FRAMES, N_MELS).astype(np.float32)


def build_model():
    """The VGGish network (torch.nn.Module) with the public port's parameter names."""
    import torch
    from torch import nn

    class VGGish(nn.Module):
        def __init__(self):
            super().__init__()
            layers, channels = [], 1
            for item in _CONV_PLAN:
                if item == "pool":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
                    channels = item
            self.features = nn.Sequential(*layers)
            fc = []
            for n_in, n_out in zip(_FC_PLAN[:-1], _FC_PLAN[1:]):
                fc += [nn.Linear(n_in, n_out), nn.ReLU(inplace=True)]
            self.embeddings = nn.Sequential(*fc)

        def forward(self, x):
            """(N, 1, 96, 64) log-mel examples -> (N, 128), after the final ReLU (the port's output)."""
            return self.embeddings[-1](self.pre_relu(x))

        def pre_relu(self, x):
            """(N, 1, 96, 64) log-mel examples -> (N, 128), the last linear layer's output."""
            x = self.features(x)
            # The fully connected weights come from TensorFlow, which flattens (H, W, C).
            return self.embeddings[:-1](torch.flatten(x.permute(0, 2, 3, 1), 1))

    return VGGish()


def _torch_load(path):
    """Weights and PCA files: weights_only loading (tensors and numpy arrays), never code,
    whatever the file's hash (d2m_bench.embedders.weights.load_weights)."""
    from .weights import load_weights

    return load_weights(path)


def select_layer(pre_relu, layer: str) -> np.ndarray:
    """The ``layer`` output from pre-ReLU embeddings: themselves, or max(0, x) for ``relu``."""
    if layer == "pre_relu":
        return pre_relu
    if layer == "relu":
        return np.maximum(pre_relu, np.float32(0))
    raise UserError(f"unknown VGGish layer '{layer}' ({', '.join(LAYERS)})")


class VGGishEmbedder:
    """Embeds waveforms into per-example pre-ReLU VGGish vectors (float32, (n_examples, 128));
    ``select(x, layer)`` turns them into the protocol's layer."""

    name = "vggish"
    sample_rate = SAMPLE_RATE
    hop = EXAMPLE_FRAMES * HOP / SAMPLE_RATE  # 0.96 s: one vector per non-overlapping example
    dim = EMBEDDING_DIM
    layers = LAYERS

    def __init__(self, weights, *, pca=None, postprocess=False, batch_size=128, device="cpu"):
        import torch

        from ..io.cache import file_digest
        from .weights import load_state_strict

        self.weights_path = str(weights)
        self.weights_sha256 = file_digest(weights)
        state = _torch_load(weights)
        if not isinstance(state, dict):
            raise UserError("not a state dict", weights)
        self.model = build_model()
        load_state_strict(self.model, state, weights, "a VGGish", "; expected the layout of vggish-10086976.pth")
        self.model.eval().to(device)
        self.device = device
        self.batch_size = int(batch_size)
        self.postprocess = bool(postprocess)
        self.pca_path = self.pca_sha256 = None
        if self.postprocess:
            if pca is None:
                raise UserError("genre.postprocess = true needs the PCA file vggish_pca_params-970ea276.pth")
            self.pca_path = str(pca)
            self.pca_sha256 = file_digest(pca)
            params = _torch_load(pca)
            try:
                self.pca_matrix = np.asarray(params["pca_eigen_vectors"], dtype=np.float64).reshape(128, 128)
                self.pca_means = np.asarray(params["pca_means"], dtype=np.float64).reshape(128)
            except (KeyError, TypeError, ValueError) as exc:
                raise UserError(f"not a VGGish PCA file ({exc})", pca) from None
        self.dim = EMBEDDING_DIM
        self._torch = torch

    def cache_config(self) -> dict:
        """Everything that changes the cached (pre-ReLU, pre-PCA) per-example embeddings.
        Version 2: entries hold the pre-ReLU output (version 1 held the post-ReLU one)."""
        return {"embedder": self.name, "front_end": FRONT_END, "weights_sha256": self.weights_sha256,
                "audio": audio_config(), "output": "pre_relu", "version": 2}

    def select(self, per_example, layer: str) -> np.ndarray:
        return select_layer(per_example, layer)

    def meta(self) -> dict:
        from .weights import is_official

        return {"embedder": self.name, "weights": self.weights_path, "weights_sha256": self.weights_sha256,
                "weights_official": is_official("vggish", self.weights_sha256),
                "postprocess": "pca_float" if self.postprocess else "none",
                "pca_sha256": self.pca_sha256, "front_end": FRONT_END, "dim": self.dim}

    def embed_examples(self, examples) -> np.ndarray:
        """(N, 96, 64) log-mel examples -> (N, 128) float32 pre-ReLU embeddings, in batches."""
        torch = self._torch
        out = np.empty((len(examples), EMBEDDING_DIM), np.float32)
        with torch.inference_mode():
            for start in range(0, len(examples), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(examples[start:start + self.batch_size]))
                out[start:start + len(x)] = self.model.pre_relu(x[:, None].to(self.device)).cpu().numpy()
        return out

    def embed_waveforms(self, waveforms) -> list:
        """Per-clip pre-ReLU arrays (n_examples_i, 128); examples of all clips share batches."""
        examples = [waveform_examples(y) for y in waveforms]
        flat = self.embed_examples(np.concatenate(examples)) if examples else np.zeros((0, EMBEDDING_DIM), np.float32)
        bounds = np.cumsum([0] + [len(e) for e in examples])
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def finalize(self, vectors: np.ndarray) -> np.ndarray:
        """The protocol's post-processing of (n, 128) vectors: identity, or PCA float projection."""
        v = np.asarray(vectors, dtype=np.float64)
        return (v - self.pca_means) @ self.pca_matrix.T if self.postprocess else v
