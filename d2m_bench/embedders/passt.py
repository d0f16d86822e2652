"""PaSST (Koutini et al., Interspeech 2022) AudioSet tagger through the ``hear21passt`` library.

``passt-s-f128-p16-s10``: the model that ``hear21passt.base.get_basic_model`` builds and that
stable-audio-metrics' ``passt_kld`` uses: architecture ``passt_s_swa_p16_128_ap476`` (PaSST-S,
128 mel bands, 16x16 patches with stride 10, SWA weights, AudioSet mAP .476), fed 32 kHz audio
through ``AugmentMelSTFT`` with ``get_basic_model``'s settings (window 800, hop 320, FFT 1024,
Kaldi mel banks 0-15000 Hz). Both are the library's own classes: the network is built with
``get_model(..., pretrained=False)`` (the library would download through timm otherwise) and
loaded strictly, ``weights_only``, from the file the toolkit resolved
(``passt-s-f128-p16-s10-ap.476-swa.pt``); the forward pass is the library's
``PasstBasicWrapper`` in mode ``"all"``: 527 AudioSet logits (before the sigmoid) and the
768-value pre-head features ((class token + distillation token) / 2 after the last norm).

Clips are cut as stable-audio-metrics' ``return_probabilities`` cuts them, so that KL on PaSST
gives ``passt_kld``'s number: the clip is peak-normalised to -1 dBFS (pyloudnorm's
``normalize.peak``), windows of 10 s start every 5 s while the start is before
max(5 s, length - 5 s); a window shorter than 10 s is zero-padded to 10 s when it holds more
than 15 % of that, else fed as it is (only a whole clip under 1.5 s can be that short). Each
window is one forward pass; the cached rows are per window, ``[logits | embedding]``.
``select`` gives one row per clip: the mean over windows (``collect="mean"`` there, before the
softmax, so that KL/IS take the softmax of the mean logits as passt_kld does; the embedding is
averaged the same way). Two rules where passt_kld crashes: a clip under 4801 samples (fewer than
the 16 STFT frames of one patch) is zero-padded to that length, and a silent clip is not scaled
(its peak is 0). Windows of one length share a batch (tested equal to one window per call).

Why stand-ins while importing: ``hear21passt.models.helpers.vit_helpers`` imports timm's
``download_cached_file`` (pretrained downloads, never used here) and timm imports torchvision;
``hear21passt.models.preprocess`` imports torchaudio, which it needs for the mel banks
(``torchaudio.compliance.kaldi.get_mel_banks``) and, during training only, for SpecAugment
masking. torchaudio and timm are imported under ``stand_ins`` when absent (each object raises
ImportError when used). Where torchaudio is installed the library uses it as published; where it
is not, the mel banks come from ``kaldi_mel`` (tested bit-equal to torchaudio's) and
``AugmentMelSTFT`` is built with ``freqm = timem = 0``, for which the library uses identities:
the masks are applied in training mode only, so the output is the same. ``meta()["mel_banks"]``
names the source that ran.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import warnings

import numpy as np

from ..io.audio import peak_normalise_dbfs
from ..errors import UserError
from .base import audio_config, equal_length_batches

NAME = "passt-s-f128-p16-s10"
ARCH = "passt_s_swa_p16_128_ap476"
SAMPLE_RATE = 32000
N_CLASSES = 527
EMBEDDING_DIM = 768
LAYERS = ("embedding", "logits")
# hear21passt.base.get_basic_model's front end and network (fmax None: the library sets 15000).
MEL = {"n_mels": 128, "sr": SAMPLE_RATE, "win_length": 800, "hopsize": 320, "n_fft": 1024, "freqm": 48, "timem": 192,
       "htk": False, "fmin": 0.0, "fmax": None, "norm": 1, "fmin_aug_range": 10, "fmax_aug_range": 2000}
NET = {"arch": ARCH, "n_classes": N_CLASSES, "in_channels": 1, "fstride": 10, "tstride": 10, "input_fdim": 128,
       "input_tdim": 998, "u_patchout": 0, "s_patchout_t": 0, "s_patchout_f": 0}
# stable-audio-metrics src/passt_kld.py return_probabilities (window_size=10, overlap=5, collect="mean")
WINDOWS = {"window_s": 10, "overlap_s": 5, "pad_if_longer_than": 0.15, "peak_normalize_db": -1.0, "collect": "mean"}
# One patch is 16 STFT frames; the pre-emphasis filter drops one sample: 1 + (n - 1) // 320 >= 16.
MIN_SAMPLES = 15 * MEL["hopsize"] + 1
MAX_BATCH = 4

_WHY = {"timm": "hear21passt imports timm only to download pretrained weights, which d2m-bench resolves itself",
        "torchaudio": "d2m-bench runs hear21passt in eval mode with its own Kaldi mel banks when torchaudio is absent"}


def library_version() -> str:
    from ..versions import package_version

    return package_version("hear21passt")


def library():
    """``(passt, preprocess, wrapper)``: the hear21passt modules, imported under the stand-ins of the
    module doc (with ``kaldi_mel.get_mel_banks`` as torchaudio's when torchaudio is absent)."""
    from . import kaldi_mel
    from .stand_ins import stand_ins

    names = ("hear21passt.models.passt", "hear21passt.models.preprocess", "hear21passt.wrapper")
    if importlib.util.find_spec("hear21passt") is None:
        raise UserError(f"the {NAME} embedder needs hear21passt: pip install --no-deps hear21passt==0.0.26 "
                        "(docs/genre-fad.md, Installing the backends)")
    try:
        with stand_ins(_WHY, {"torchaudio.compliance.kaldi.get_mel_banks": kaldi_mel.get_mel_banks}), \
                contextlib.redirect_stdout(io.StringIO()):
            return tuple(importlib.import_module(n) for n in names)
    except ImportError as exc:
        raise UserError(f"hear21passt cannot be imported ({exc}); pip install --no-deps hear21passt==0.0.26") from None


def mel_banks_source() -> str:
    """Which ``get_mel_banks`` the library's mel front end calls: torchaudio's or d2m-bench's port."""
    from . import kaldi_mel

    preprocess = library()[1]
    if preprocess.torchaudio.compliance.kaldi.get_mel_banks is kaldi_mel.get_mel_banks:
        return "d2m_bench.embedders.kaldi_mel (torchaudio absent; bit-equal to torchaudio 2.11.1's)"
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"torchaudio {version('torchaudio')}"
    except PackageNotFoundError:
        return "torchaudio"


def mel_settings() -> dict:
    """``MEL``, with masking off (the library's identities) when the port stands in for torchaudio."""
    if mel_banks_source().startswith("torchaudio"):
        return dict(MEL)
    return {**MEL, "freqm": 0, "timem": 0}


def build_net():
    """The library's PaSST network of ``get_basic_model`` (random initial weights)."""
    passt = library()[0]
    with contextlib.redirect_stdout(io.StringIO()):  # get_model prints the whole network
        return passt.get_model(pretrained=False, **NET)


def build_wrapper(net, mode="all"):
    """The library's ``PasstBasicWrapper`` around ``net`` and its ``AugmentMelSTFT`` (``mel_settings``)."""
    _, preprocess, wrapper = library()
    with contextlib.redirect_stdout(io.StringIO()):  # "Warning: FMAX is None setting to 15000"
        mel = preprocess.AugmentMelSTFT(**mel_settings())
    return wrapper.PasstBasicWrapper(mel=mel, net=net, mode=mode)


def state_dict_of(obj, path):
    """The network state inside a checkpoint: a state dict as published, or ``{"model": state}``
    (the library's checkpoint filter unwraps the latter too)."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        return obj["model"]
    if isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        return obj
    raise UserError("not a PaSST checkpoint (expected a state dict or {'model': state_dict})", path)


def windows(y: np.ndarray) -> list:
    """stable-audio-metrics' analysis windows of a peak-normalised 32 kHz clip (module doc)."""
    size = int(WINDOWS["window_s"] * SAMPLE_RATE)
    step = int((WINDOWS["window_s"] - WINDOWS["overlap_s"]) * SAMPLE_RATE)
    out = []
    for start in range(0, max(step, len(y) - step), step):
        w = y[start:start + size]
        if len(w) < size and len(w) > int(WINDOWS["window_s"] * SAMPLE_RATE * WINDOWS["pad_if_longer_than"]):
            w = np.pad(w, (0, size - len(w)))
        out.append(np.ascontiguousarray(w, dtype=np.float32))
    return out


class PasstEmbedder:
    """Per-window PaSST outputs: cached rows are (n_windows, 527 + 768) = [logits | embedding]."""

    name = NAME
    sample_rate = SAMPLE_RATE
    layers = LAYERS
    hop = None  # select() gives one vector per clip
    dim = EMBEDDING_DIM
    cache_dim = N_CLASSES + EMBEDDING_DIM

    def __init__(self, weights, *, name=NAME, batch_size=4, device="cpu"):
        import torch

        from ..io.cache import file_digest
        from .weights import load_state_strict, load_weights

        if name != NAME:
            raise UserError(f"unknown PaSST setting '{name}' ({NAME})")
        self.weights_path = str(weights)
        self.weights_sha256 = file_digest(weights)
        state = state_dict_of(load_weights(weights), weights)
        net = build_net()
        load_state_strict(net, state, weights, f"a {NAME}")
        self.model = build_wrapper(net, mode="all").eval().to(device)
        self.mel_banks = mel_banks_source()
        self.device = device
        # A 10-s window is 1190 tokens: each attention map is 12 x 1190^2 floats (68 MB) per window,
        # so batches stay small; on a CPU batching gains nothing measurable (docs/genre-fad.md).
        self.batch_size = max(1, min(int(batch_size), MAX_BATCH))
        self._torch = torch

    def cache_config(self) -> dict:
        return {"embedder": self.name, "arch": ARCH, "mel": MEL, "net": NET, "windows": WINDOWS,
                "pad_short_to": MIN_SAMPLES, "weights_sha256": self.weights_sha256, "audio": audio_config(),
                "library": "hear21passt " + library_version(), "output": "window logits+embedding", "version": 1}

    def meta(self) -> dict:
        from .weights import is_official

        return {"embedder": self.name, "weights": self.weights_path, "weights_sha256": self.weights_sha256,
                "weights_official": is_official(self.name, self.weights_sha256), "postprocess": "none",
                "arch": ARCH, "mel": mel_settings(), "mel_banks": self.mel_banks, "windows": WINDOWS,
                "dim": self.dim, "n_classes": N_CLASSES, "hop": self.hop, "sample_rate": SAMPLE_RATE,
                "library": "hear21passt " + library_version(), "layers": list(self.layers)}

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            # the library warns on every window that is not 998 frames, on return_complex=False and on
            # torch.cuda.amp.autocast: noise on every call, nothing a user can act on
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            return self.model(x).cpu().numpy()

    def embed_waveforms(self, waveforms) -> list:
        """Per-clip (n_windows, 527 + 768) float32; windows of one length go through together."""
        clips = []
        for y in waveforms:
            y = np.asarray(y, dtype=np.float32)
            if len(y) < MIN_SAMPLES:
                y = np.pad(y, (0, MIN_SAMPLES - len(y)))
            clips.append(windows(peak_normalise_dbfs(y, WINDOWS["peak_normalize_db"]).astype(np.float32)))
        flat = [(i, j, w) for i, ws in enumerate(clips) for j, w in enumerate(ws)]
        rows = {}
        for chunk in equal_length_batches(flat, self.batch_size, length=lambda item: len(item[2])):
            for k, row in zip(chunk, self._forward(np.stack([flat[k][2] for k in chunk]))):
                rows[flat[k][0], flat[k][1]] = row
        return [np.stack([rows[i, j] for j in range(len(ws))]).astype(np.float32) for i, ws in enumerate(clips)]

    def select(self, per_example, layer: str) -> np.ndarray:
        """(1, 768) or (1, 527): the window rows' mean (collect="mean"), float64."""
        rows = np.asarray(per_example, dtype=np.float64)
        if layer == "logits":
            return rows[:, :N_CLASSES].mean(axis=0, keepdims=True)
        if layer == "embedding":
            return rows[:, N_CLASSES:].mean(axis=0, keepdims=True)
        raise UserError(f"unknown {self.name} layer '{layer}' ({', '.join(LAYERS)})")

    def finalize(self, vectors):
        return np.asarray(vectors, dtype=np.float64)
