"""LAION CLAP (Wu, Chen et al., ICASSP 2023) audio and text embeddings through ``laion_clap``.

The model is the library's own ``laion_clap.CLAP_Module`` (non-fusion, 48 kHz, 512-d joint
space), and every embedding comes from its own calls, ``get_audio_embedding_from_data`` and
``get_text_embedding``. Two published checkpoints, the same two that fadtk offers:

- ``clap-laion-music``: ``music_audioset_epoch_15_esc_90.14.pt`` with ``amodel="HTSAT-base"``
  (fadtk ``clap-laion-music``; stable-audio-metrics' ``music_audioset_epoch_15_esc_90.14.pt``
  option, also HTSAT-base, non-fusion);
- ``clap-laion-audio``: ``630k-audioset-best.pt`` with the library's default ``HTSAT-tiny``
  (fadtk ``clap-laion-audio``).

The checkpoint is read by d2m-bench (``weights.load_weights``, weights_only) and handed to the
model the way ``CLAP_Module.load_ckpt`` does through ``clap_module.factory.load_state_dict``:
the ``state_dict`` entry when there is one, a leading ``module.`` cut from every key when the
first key starts with ``module``, ``text_branch.embeddings.position_ids`` dropped (transformers
>= 4.31 no longer keeps it), then a strict ``load_state_dict``. The library helper itself is
not called because it unpickles with ``weights_only=False``.

Two outputs, each computed and cached on its own (``layer`` chosen when the embedder is built):

- ``audio`` (FD; fadtk's ``CLAPLaionModel``): 10-s windows starting every second
  (0, 1, 2, ... s while the start is inside the clip, a lone last sample aside: ``fadtk_windows``),
  each zero-padded to 10 s, one embedding per window: ``hop`` = 1 s;
- ``clip`` (CLAP score; stable-audio-metrics ``clap_score``): the clip peak-normalised to
  -1 dBFS (pyloudnorm ``normalize.peak``) and embedded whole. Up to 10 s this is exactly the
  library's call (which repeats a shorter clip to fill 10 s). Over 10 s the library would crop
  10 s at a random offset (``rand_trunc``); here instead the clip is cut into consecutive 10-s
  windows, the last one aligned to the clip's end, and the clip vector is the mean of their
  embeddings scaled back to unit length: deterministic, and every second of the clip counts.

No window is ever longer than 10 s, so the library's random crop never runs; every window goes
through the library call unchanged (its int16 quantisation, padding and batching included).

Files from the Hugging Face hub: importing ``laion_clap`` loads the ``bert-base-uncased``,
``roberta-base`` and ``facebook/bart-base`` tokenizers, and building the model loads the
``roberta-base`` config and weights (the weights are then replaced by the checkpoint's). The
toolkit resolves those three folders first (``weights.resolve``: ``--weights NAME=DIR``,
``D2M_BENCH_<NAME>``, the local Hugging Face cache) and shows them to transformers as a private
temporary cache (links to the files the folder digest covers) while ``HF_HUB_OFFLINE`` is on, so
nothing is downloaded and the files used are the ones whose digests the result records. The text side depends on the ``roberta-base``
tokenizer files, so its folder digest is recorded as ``text_sha256``.

Why a stand-in ``torchvision`` while importing: ``clap_module/utils.py``, ``transform.py`` and
``training/data.py`` import torchvision for image code and the fusion model's mel resize; none
of it runs for the non-fusion models used here (``stand_ins``: an absent torchvision is replaced
for the import only; calling any of it raises ImportError). Importing laion_clap also appends its
own folder to ``sys.path`` (its ``__init__``: ``hook.py`` imports ``clap_module`` as a top-level
package), which stays for the process, as with a plain ``import laion_clap``. Its ``pann_model``
also sets ``NUMBA_CACHE_DIR=/tmp/`` on import; that one is put back (``laion_clap_module``), because
a numba cache shared through /tmp by concurrent processes gets corrupted and they crash.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..io.audio import peak_normalise_dbfs
from ..errors import UserError
from .base import audio_config, environ_kept

SAMPLE_RATE = 48000
WINDOW = 10 * SAMPLE_RATE  # the model's input length (audio_cfg clip_samples = 480000)
HOP = SAMPLE_RATE  # fadtk: a window every second
DIM = 512
LAYERS = ("audio", "clip")
PEAK_DBFS = -1.0  # stable-audio-metrics: pyln.normalize.peak(audio, -1.0)
SETTINGS = {
    "clap-laion-music": {"checkpoint": "music_audioset_epoch_15_esc_90.14.pt", "amodel": "HTSAT-base",
                         "tmodel": "roberta", "enable_fusion": False},
    "clap-laion-audio": {"checkpoint": "630k-audioset-best.pt", "amodel": "HTSAT-tiny",
                         "tmodel": "roberta", "enable_fusion": False},
}
# weights.KNOWN entry -> the repository name laion_clap passes to transformers' from_pretrained
HF_REPOS = {"roberta-base": "roberta-base", "bert-base-uncased": "bert-base-uncased", "bart-base": "facebook/bart-base"}
TORCHVISION_REASON = ("torchvision is not installed; laion_clap uses it only for image code and the fusion "
                      "model's mel resize, which the non-fusion CLAP models of d2m-bench never run")
_VIEW_REVISION = "0" * 40


def library_version() -> str:
    return _version("laion_clap")


def _extra_hint() -> str:
    return ("pip install 'd2m-bench[clap]' then pip install --no-deps laion_clap==1.1.7 "
            "(docs/genre-fad.md, Installing the backends)")


def resolve_hub_folders(explicit=None) -> dict:
    """KNOWN name -> snapshot folder of the three Hugging Face repositories laion_clap loads,
    or the one-line UserError of ``weights.resolve`` naming what is missing and how to get it."""
    from .weights import resolve

    explicit = explicit or {}
    return {name: Path(resolve(name, explicit.get(name))) for name in HF_REPOS}


@contextmanager
def hub_view(folders: dict):
    """transformers sees exactly ``folders`` as its Hugging Face cache, offline.

    A temporary cache folder holds, for each repository laion_clap names, ``refs/main`` and a
    snapshot of links to the entry's files in the resolved folder (only those its folder digest
    covers, ``weights.KNOWN[name]["hf_files"]``); ``huggingface_hub``'s cache location and
    offline flag (read by transformers at each call) point there for the duration, and the
    environment variables are set alike for code that reads those; all are restored after."""
    import huggingface_hub.constants as hub

    from .hf_weights import folder_files
    from .weights import KNOWN

    # transformers 4.x copies both values at import (utils.hub.TRANSFORMERS_CACHE, _is_offline_mode);
    # 5.x reads huggingface_hub's at each call: both places are pointed at the view.
    import transformers.utils.hub as tf_hub

    copies = [(hub, "HF_HUB_CACHE", None), (hub, "HF_HUB_OFFLINE", True), (tf_hub, "TRANSFORMERS_CACHE", None),
              (tf_hub, "_is_offline_mode", True)]
    copies = [(m, attr, v) for m, attr, v in copies if hasattr(m, attr)]
    saved = [getattr(m, attr) for m, attr, _ in copies]
    with tempfile.TemporaryDirectory(prefix="d2m-bench-hf-view-") as tmp, \
            environ_kept("HF_HUB_OFFLINE", "HF_HUB_CACHE"):
        for name, folder in folders.items():
            repo = Path(tmp) / ("models--" + HF_REPOS[name].replace("/", "--"))
            (repo / "refs").mkdir(parents=True)
            (repo / "refs" / "main").write_text(_VIEW_REVISION)
            snapshot = repo / "snapshots" / _VIEW_REVISION
            snapshot.mkdir(parents=True)
            for path in folder_files(KNOWN[name], folder):
                os.symlink(path.resolve(), snapshot / path.name)
        for m, attr, value in copies:
            setattr(m, attr, tmp if value is None else value)
        os.environ.update({"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": tmp})
        try:
            yield tmp
        finally:
            for (m, attr, _), value in zip(copies, saved):
                setattr(m, attr, value)


def _first_line(exc) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]


def laion_clap_module(folders: dict):
    """``import laion_clap`` offline against ``folders`` (``hub_view``), torchvision stood in."""
    if "laion_clap" in sys.modules and hasattr(sys.modules["laion_clap"], "CLAP_Module"):
        return sys.modules["laion_clap"]
    if importlib.util.find_spec("laion_clap") is None:
        raise UserError(f"the CLAP embedders need laion_clap: {_extra_hint()}")
    from .stand_ins import stand_ins

    # laion_clap's pann_model sets NUMBA_CACHE_DIR=/tmp/ for the whole process when imported: every
    # later numba compile, and every subprocess started afterwards, would then share one numba cache
    # in /tmp, which concurrent processes corrupt (segfaults). librosa is imported first so its
    # kernels load from their own cache, and the variable is put back as it was.
    import librosa  # noqa: F401

    with hub_view(folders), stand_ins({"torchvision": TORCHVISION_REASON}), environ_kept("NUMBA_CACHE_DIR"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return importlib.import_module("laion_clap")
        except ImportError as exc:
            raise UserError(f"laion_clap cannot be imported ({_first_line(exc)}); {_extra_hint()}") from None
        except (OSError, ValueError) as exc:  # a tokenizer folder without the files transformers reads
            raise UserError(f"laion_clap cannot load its tokenizers from {', '.join(map(str, folders.values()))} "
                            f"({_first_line(exc)})") from None


def build_module(name: str, folders: dict, device: str = "cpu"):
    """The library's ``CLAP_Module`` with the settings of ``name``, built offline from ``folders``
    (random audio branch; text branch from the ``roberta-base`` folder)."""
    from transformers.utils import logging as hf_logging

    settings = SETTINGS[name]
    module = laion_clap_module(folders)
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" of roberta-base, replaced by the checkpoint's anyway
    with hub_view(folders), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.meshgrid indexing notice from HTSAT's window attention
        try:
            return module.CLAP_Module(enable_fusion=settings["enable_fusion"], device=device,
                                      amodel=settings["amodel"], tmodel=settings["tmodel"])
        except (OSError, ValueError) as exc:
            raise UserError(f"laion_clap cannot build the text model from {folders['roberta-base']} "
                            f"({_first_line(exc)})") from None
        finally:
            if bar:
                hf_logging.enable_progress_bar()


def load_checkpoint(path):
    """``weights.load_weights`` admitting numpy scalars too: the published CLAP checkpoints are
    reported to hold numpy float64 scalars beside the state dict (a weights_only reader of the
    music checkpoint elsewhere admits exactly numpy's scalar reconstructor and the float64 dtype);
    ``numpy.core.multiarray.scalar`` rebuilds a scalar from its dtype and bytes and runs no code."""
    import torch

    from .weights import load_weights

    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    names = [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar")]
    with torch.serialization.safe_globals([scalar, *names]):
        return load_weights(path)


def checkpoint_state(obj, path) -> dict:
    """The model state inside a CLAP checkpoint, transformed as ``CLAP_Module.load_ckpt`` does
    (module doc): ``state_dict`` entry, ``module.`` prefix, no ``position_ids`` buffer."""
    import transformers
    from packaging import version

    state = obj["state_dict"] if isinstance(obj, dict) and "state_dict" in obj else obj
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) for k in state):
        raise UserError("not a CLAP checkpoint (expected {'state_dict': state dict} or a state dict)", path)
    if next(iter(state)).startswith("module"):
        state = {k[7:]: v for k, v in state.items()}
    if version.parse(transformers.__version__) >= version.parse("4.31.0"):
        # the library deletes it unconditionally (KeyError when absent); absent is fine here
        state = {k: v for k, v in state.items() if k != "text_branch.embeddings.position_ids"}
    return state


def fadtk_windows(y) -> list:
    """fadtk's CLAP windows: y[s : s + 10 s] for s = 0, 1 s, 2 s, ... < len(y), zero-padded to 10 s,
    except that a last sample alone opens no window: resampling a whole number of seconds with
    librosa's rounding (2 s at 22.05 or 44.1 kHz -> 96001 samples at 48 kHz) adds one sample where
    fadtk's sox-resampled file has none, and a window of that one sample would be a silent vector."""
    y = np.asarray(y, dtype=np.float32)
    if len(y) == 0:
        y = np.zeros(1, dtype=np.float32)
    out = []
    for start in range(0, max(len(y) - 1, 1), HOP):
        w = y[start:start + WINDOW]
        out.append(w if len(w) == WINDOW else np.pad(w, (0, WINDOW - len(w))))
    return out


def clip_pieces(y) -> list:
    """What the ``clip`` vector is made of: the whole clip up to 10 s (the library fills it),
    else consecutive 10-s windows with the last one ending at the clip's end."""
    if len(y) <= WINDOW:
        return [y if len(y) else np.zeros(1, dtype=y.dtype)]
    starts = list(range(0, len(y) - WINDOW, WINDOW)) + [len(y) - WINDOW]
    return [y[s:s + WINDOW] for s in starts]


class ClapEmbedder:
    """CLAP vectors of one output, chosen when built (``layer``, default ``audio``): per clip
    (n_windows, 512) for ``audio``, (1, 512) for ``clip``. The two outputs cost very different
    work (a 10-s clip is 10 fadtk windows but one clip vector), so each is computed and cached
    only where a section asks for it; ``for_layer`` gives the other output on the same network."""

    sample_rate = SAMPLE_RATE
    dim = DIM
    layers = LAYERS
    layer_at_build = True

    def __init__(self, weights, *, name="clap-laion-music", batch_size=16, device="cpu", layer=None,
                 hub_folders=None, trust_remote_code=False):
        from ..io.cache import file_digest
        from .weights import digest, load_state_strict

        if name not in SETTINGS:
            raise UserError(f"unknown CLAP setting '{name}' ({', '.join(SETTINGS)})")
        self._set_layer(layer or LAYERS[0])
        self.name = name
        self.settings = SETTINGS[name]
        self.weights_path = str(weights)
        self.weights_sha256 = file_digest(weights)
        self.hub_folders = {k: Path(v) for k, v in (hub_folders or resolve_hub_folders()).items()}
        self.text_sha256 = digest("roberta-base", self.hub_folders["roberta-base"])
        state = checkpoint_state(load_checkpoint(weights), weights)
        self.device = device
        self.module = build_module(name, self.hub_folders, device)
        load_state_strict(self.module.model, state, weights, f"a {name} ({self.settings['amodel']})")
        self.module.eval()
        self.batch_size = int(batch_size)
        self.cache_dim = DIM

    def _set_layer(self, layer):
        if layer not in LAYERS:
            raise UserError(f"unknown CLAP layer '{layer}' ({', '.join(LAYERS)})")
        self.layer = layer
        self.hop = HOP / SAMPLE_RATE if layer == "audio" else None

    def for_layer(self, layer: str) -> "ClapEmbedder":
        """The same loaded network computing ``layer`` instead."""
        import copy

        other = copy.copy(self)
        other._set_layer(layer)
        return other

    @staticmethod
    def resolve_hub(explicit) -> dict:
        """The Hugging Face folders, found before any work (``base.resolve_embedder``): ``explicit``
        maps weights names to folders (``--weights roberta-base=DIR``), the rest is looked up."""
        return resolve_hub_folders(explicit)

    def _settings_record(self) -> dict:
        what = ("fadtk: 10-s windows every 1 s, zero-padded" if self.layer == "audio" else
                f"peak {PEAK_DBFS:g} dBFS; whole clip up to 10 s (library repeat-pad), else mean of consecutive "
                "10-s windows (last one end-aligned), unit length")
        return {**self.settings, "sample_rate": SAMPLE_RATE, "window_samples": WINDOW, "hop_samples": HOP,
                "output": self.layer, "output_rule": what}

    def cache_config(self) -> dict:
        return {"embedder": self.name, "settings": self._settings_record(), "weights_sha256": self.weights_sha256,
                "audio": audio_config(), "library": "laion_clap " + library_version(),
                "torchlibrosa": _version("torchlibrosa"), "version": 2}

    def meta(self) -> dict:
        from .weights import is_official

        return {"embedder": self.name, "weights": self.weights_path, "weights_sha256": self.weights_sha256,
                "weights_official": is_official(self.name, self.weights_sha256), "postprocess": "none",
                "settings": self._settings_record(), "dim": DIM, "hop": self.hop, "sample_rate": SAMPLE_RATE,
                "text_sha256": self.text_sha256, "hub_folders": {k: str(v) for k, v in self.hub_folders.items()},
                "library": "laion_clap " + library_version(), "layers": list(self.layers), "layer": self.layer}

    def _embed(self, pieces: list) -> np.ndarray:
        """The library's ``get_audio_embedding_from_data`` over pieces of at most 10 s, in batches."""
        import torch

        rows = []
        with torch.inference_mode():
            for start in range(0, len(pieces), self.batch_size):
                batch = [np.asarray(p, dtype=np.float32) for p in pieces[start:start + self.batch_size]]
                rows.append(np.asarray(self.module.get_audio_embedding_from_data(batch), dtype=np.float32))
        return np.concatenate(rows) if rows else np.zeros((0, DIM), np.float32)

    def embed_waveforms(self, waveforms) -> list:
        """Per clip float32 rows of this embedder's output: (n_windows, 512) for ``audio``,
        (1, 512) for ``clip``. Pieces of all clips share the library's batches."""
        pieces, spans = [], []
        for y in waveforms:
            y = np.asarray(y, dtype=np.float32)
            if self.layer == "audio":
                mine = fadtk_windows(y)
            else:
                mine = [p.astype(np.float32) for p in clip_pieces(peak_normalise_dbfs(y, PEAK_DBFS))]
            spans.append((len(pieces), len(mine)))
            pieces += mine
        emb = self._embed(pieces)
        out = []
        for start, n in spans:
            rows = emb[start:start + n]
            if self.layer == "clip" and n > 1:
                mean = rows.astype(np.float64).mean(axis=0)
                rows = (mean / max(np.linalg.norm(mean), 1e-12))[None].astype(np.float32)
            out.append(np.ascontiguousarray(rows))
        return out

    def embed_texts(self, texts) -> np.ndarray:
        """(n, 512) float32 unit vectors: the library's ``get_text_embedding`` (its RoBERTa
        tokenizer, 77 tokens), 64 prompts per call as stable-audio-metrics batches them."""
        import torch

        texts = [str(t) for t in texts]
        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), 64):
                rows.append(np.asarray(self.module.get_text_embedding(texts[start:start + 64]), dtype=np.float32))
        return np.concatenate(rows) if rows else np.zeros((0, DIM), np.float32)

    def select(self, per_example, layer: str) -> np.ndarray:
        if layer not in LAYERS:
            raise UserError(f"unknown {self.name} layer '{layer}' ({', '.join(LAYERS)})")
        if layer != self.layer:
            raise UserError(f"this {self.name} embedder computes its '{self.layer}' output, not '{layer}'")
        return per_example

    def finalize(self, vectors):
        return np.asarray(vectors, dtype=np.float64)


def _version(dist: str) -> str:
    from ..versions import package_version

    return package_version(dist)

