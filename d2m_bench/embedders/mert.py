"""MERT-v1 (Li et al., "MERT: Acoustic Music Understanding Model with Large-Scale
Self-supervised Training", ICLR 2024) hidden states through ``transformers``.

Two published checkpoints, each a Hugging Face repository folder found by
``d2m_bench.embedders.weights.resolve`` (``--weights NAME=DIR``, ``$D2M_BENCH_MERT_V1_95M`` /
``$D2M_BENCH_MERT_V1_330M``, the local Hugging Face cache; never downloaded at run time):

- ``mert-v1-95m`` (``m-a-p/MERT-v1-95M``): 12 transformer layers, 768 values per frame;
- ``mert-v1-330m`` (``m-a-p/MERT-v1-330M``): 24 layers, 1024 values per frame.

The FD definition is fadtk's ``MERTModel`` (microsoft/fadtk, ``fadtk/model_loader.py``), kept as
its code path: the folder's ``Wav2Vec2FeatureExtractor`` (its ``preprocessor_config.json``:
24 kHz, ``do_normalize`` = zero mean and unit variance per clip) turns the 24 kHz clip into
``input_values`` (and ``attention_mask``), ``AutoModel``'s forward with
``output_hidden_states=True`` returns the input of the first transformer layer (``layer0``)
and every layer's output (``layer1`` ... ``layer12`` / ``layer24``), and fadtk takes one of
them whole: one vector per frame, no pooling, no chunking. Clips longer than 6 minutes are cut
to their first 6 minutes (fadtk's ``limit_minutes=6``). The default layer is fadtk's:
``layer12`` (``MERTModel(layer=12)``; fadtk's model list has ``MERT-v1-95M`` with layers
1-12, named ``MERT-v1-95M`` for 12 and ``MERT-v1-95M-N`` otherwise; its class default is 12 for
the 330M checkpoint too, which is the middle of that network, so ``mert-v1-330m`` defaults to
``layer12`` as well and ``[fd.layers]`` selects ``layer24`` for its last layer).

Frames: the convolutional feature encoder's strides (``config.conv_stride``, 5 x 2^6 = 320
samples for MERT-v1) set the hop, 320 / 24000 s = 1/75 s; ``hop`` is computed from the loaded
config, not assumed. Differences from fadtk, none of which changes a vector beyond float
rounding except the last two: clips of one length share a forward pass (in eval mode nothing
crosses examples: the per-clip normalisation is per clip, GroupNorm normalises each example,
dropout is off; tested equal to the one-clip call); vectors stay float32 (fadtk stores them as
float16 in its cache); a clip shorter than the 400-sample receptive field of the feature
encoder (on which fadtk's call fails) is zero-padded to 400 samples first; decoding and
resampling are d2m-bench's (``load_audio``), fadtk resamples with ffmpeg beforehand.

Model code: the published MERT-v1 folders declare ``auto_map`` in ``config.json``, i.e. they
run their own ``modeling_MERT.py`` / ``configuration_MERT.py``. Running code that arrived with
a weights folder is the user's explicit choice (``--trust-remote-code NAME``;
``options={"trust_remote_code": [NAME]}`` in the Python API); without it the folder is refused
before anything is loaded, with the files' SHA-256 in the message. The SHA-256 of every code
file that ran is recorded (``remote_code``) beside the folder digest. A folder whose config is a
built-in ``transformers`` model type (e.g. ``hubert``) runs no foreign code and needs no trust.
Weights are read by ``transformers`` (safetensors, or ``torch.load`` with ``weights_only``).
"""
from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import audio_config, environ_kept, equal_length_batches

SAMPLE_RATE = 24000
MAX_SECONDS = 360  # fadtk MERTModel(limit_minutes=6): longer clips are truncated
FADTK_LAYER = 12
SETTINGS = {
    "mert-v1-95m": {"hf_repo": "m-a-p/MERT-v1-95M", "dim": 768, "n_layers": 12},
    "mert-v1-330m": {"hf_repo": "m-a-p/MERT-v1-330M", "dim": 1024, "n_layers": 24},
}
# auto_map entries AutoModel.from_pretrained follows (the feature extractor is always the
# library's Wav2Vec2FeatureExtractor, which runs no folder code)
_CODE_KEYS = ("AutoConfig", "AutoModel")


def layer_names(n_layers: int) -> tuple:
    """``layer12`` (fadtk's default) first, then ``layer0`` ... ``layer<n_layers>``."""
    return (f"layer{FADTK_LAYER}", *(f"layer{i}" for i in range(n_layers + 1) if i != FADTK_LAYER))


def library_versions() -> dict:
    from ..versions import package_version

    return {pkg: package_version(pkg) for pkg in ("transformers", "huggingface_hub", "safetensors", "torch")}


def read_config(folder) -> dict:
    """``config.json`` of a model folder as a dict; one-line UserError otherwise."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("not a model folder: config.json missing", folder) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"unreadable config.json ({exc.__class__.__name__})", path) from None
    if not isinstance(config, dict):
        raise UserError("config.json is not a JSON object", path)
    return config


def remote_code_files(folder, config: dict) -> dict:
    """``{file name: sha256}`` of the Python files that loading ``folder`` would run: the modules
    ``auto_map`` names for AutoConfig / AutoModel and what they import relatively (as
    ``transformers.dynamic_module_utils`` collects them); empty for built-in model types."""
    from transformers.dynamic_module_utils import get_relative_import_files

    from ..io.cache import file_digest

    auto_map = config.get("auto_map") or {}
    if not isinstance(auto_map, dict):
        raise UserError("config.json: auto_map is not an object", Path(folder) / "config.json")
    modules = []
    for key in _CODE_KEYS:
        ref = auto_map.get(key)
        if ref is None:
            continue
        ref = ref[0] if isinstance(ref, (list, tuple)) and ref else ref
        if not isinstance(ref, str) or "." not in ref:
            raise UserError(f"config.json: auto_map.{key} = {ref!r} is not 'module.Class'", Path(folder) / "config.json")
        if "--" in ref:  # code from another repository, fetched at load time
            raise UserError(f"config.json: auto_map.{key} = '{ref}' names code in another repository; "
                            "d2m-bench runs no code fetched at load time", Path(folder) / "config.json")
        modules.append(ref.rsplit(".", 1)[0])
    files = []
    for module in dict.fromkeys(modules):
        path = Path(folder) / f"{module.replace('.', os.sep)}.py"
        try:
            files += [path, *map(Path, get_relative_import_files(path))]
        except OSError as exc:
            raise UserError(f"config.json asks to run {path.name}, which cannot be read ({exc.strerror or exc})",
                            folder) from None
    return {p.name: file_digest(p) for p in dict.fromkeys(files)}


def check_folder(folder, name: str, *, trust_remote_code: bool = False) -> dict:
    """The remote-code files of ``folder`` (``remote_code_files``), after refusing, in one line,
    a folder that asks to run code when the user has not allowed it, or whose model type
    ``transformers`` does not know."""
    from transformers import CONFIG_MAPPING

    config = read_config(folder)
    code = remote_code_files(folder, config)
    if code and not trust_remote_code:
        listed = ", ".join(f"{n} (sha256 {h})" for n, h in code.items())
        raise UserError(f"config.json asks to run {listed}; read {'them' if len(code) > 1 else 'it'}, then pass "
                        f"--trust-remote-code {name}", folder)
    if not code and config.get("model_type") not in CONFIG_MAPPING:
        raise UserError(f"config.json: model_type {config.get('model_type')!r} is not a transformers model type and "
                        "no code is named (auto_map)", Path(folder) / "config.json")
    return code


@contextmanager
def _offline():
    """HF_HUB_OFFLINE=1, transformers' progress bars off and its log at error level while a
    folder loads (nothing may be fetched; the bars and weight reports are not ours to print);
    all restored after."""
    from transformers.utils import logging as hf_logging

    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    with environ_kept("HF_HUB_OFFLINE"):
        os.environ["HF_HUB_OFFLINE"] = "1"
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        try:
            yield
        finally:
            if bars:
                hf_logging.enable_progress_bar()
            hf_logging.set_verbosity(verbosity)


def load_folder(folder, *, trust_remote_code: bool):
    """``(model, feature_extractor)`` as fadtk loads them, from a local folder only:
    ``AutoModel.from_pretrained`` (eval mode) and ``Wav2Vec2FeatureExtractor.from_pretrained``.
    Weights the model expects but the folder lacks are an error (transformers would leave them
    random)."""
    from transformers import AutoModel, Wav2Vec2FeatureExtractor

    with _offline():
        try:
            model, info = AutoModel.from_pretrained(str(folder), local_files_only=True,
                                                    trust_remote_code=trust_remote_code, output_loading_info=True)
            processor = Wav2Vec2FeatureExtractor.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, ImportError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise UserError(f"transformers {library_versions()['transformers']} cannot load this folder "
                            f"({exc.__class__.__name__}: {first})", folder) from None
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise UserError(f"the weights in this folder lack {len(missing)} of the model's tensors (first: {missing[0]})",
                        folder)
    return model.eval(), processor


class MertEmbedder:
    """Per-frame hidden states of one MERT-v1 layer, (n_frames, dim) float32 per clip.

    The layer is chosen when the embedder is built (``layer``; default ``layer12``) and only that
    layer is cached: all 13 (25) layers would be 40 (100) kB per frame."""

    sample_rate = SAMPLE_RATE
    layer_at_build = True  # get_embedder passes the [fd.layers] choice
    remote_code_capable = True  # --trust-remote-code NAME applies
    name = dim = None
    layers = ()

    def __init__(self, folder, *, name=None, batch_size=8, device="cpu", layer=None, trust_remote_code=False):
        import torch

        from .weights import digest

        name = name or self.name
        if name not in SETTINGS:
            raise UserError(f"unknown MERT checkpoint '{name}' ({', '.join(SETTINGS)})")
        self.name, self.settings = name, SETTINGS[name]
        self.layer = layer or self.layers[0]
        if self.layer not in self.layers:
            raise UserError(f"unknown {name} layer '{self.layer}' (layer0 ... layer{self.settings['n_layers']})")
        self.layer_index = int(self.layer[len("layer"):])
        self.weights_path = str(folder)
        self.trust_remote_code = bool(trust_remote_code)
        self.remote_code = check_folder(folder, name, trust_remote_code=self.trust_remote_code)
        self.weights_sha256 = digest(name, folder)
        self.model, self.processor = load_folder(folder, trust_remote_code=self.trust_remote_code)
        config = self.model.config
        sizes = (getattr(config, "hidden_size", None), getattr(config, "num_hidden_layers", None))
        if sizes != (self.dim, self.settings["n_layers"]):
            raise UserError(f"not a {name} folder: hidden_size {sizes[0]}, num_hidden_layers {sizes[1]} "
                            f"(expected {self.dim}, {self.settings['n_layers']})", folder)
        if int(self.processor.sampling_rate) != SAMPLE_RATE:
            raise UserError(f"preprocessor_config.json: sampling_rate {self.processor.sampling_rate}, "
                            f"{name} takes {SAMPLE_RATE} Hz", folder)
        self.stride = math.prod(int(s) for s in config.conv_stride)
        self.hop = self.stride / SAMPLE_RATE
        # shortest input that gives one frame: the receptive field of the conv stack
        field = 1
        for k, s in zip(reversed(config.conv_kernel), reversed(config.conv_stride)):
            field = (field - 1) * int(s) + int(k)
        self.min_samples = field
        self.max_samples = MAX_SECONDS * SAMPLE_RATE
        self.model.to(device)
        self.device = device
        self.batch_size = int(batch_size)
        self._torch = torch

    def _processor_config(self) -> dict:
        p = self.processor
        return {"class": type(p).__name__, "sampling_rate": int(p.sampling_rate), "do_normalize": bool(p.do_normalize),
                "return_attention_mask": bool(p.return_attention_mask), "padding_value": float(p.padding_value)}

    def cache_config(self) -> dict:
        return {"embedder": self.name, "layer": self.layer, "weights_sha256": self.weights_sha256,
                "remote_code": self.remote_code, "processor": self._processor_config(), "max_seconds": MAX_SECONDS,
                "pad_short_to": self.min_samples, "audio": audio_config(), "library": library_versions(),
                "output": "hidden_states", "version": 1}

    def meta(self) -> dict:
        from .weights import is_official

        return {"embedder": self.name, "weights": self.weights_path, "weights_sha256": self.weights_sha256,
                "weights_official": is_official(self.name, self.weights_sha256), "postprocess": "none",
                "hf_repo": self.settings["hf_repo"], "layer": self.layer, "dim": self.dim, "hop": self.hop,
                "sample_rate": SAMPLE_RATE, "model_class": type(self.model).__name__,
                "model_type": getattr(self.model.config, "model_type", None),
                "trust_remote_code": self.trust_remote_code, "remote_code": self.remote_code,
                "processor": self._processor_config(), "max_seconds": MAX_SECONDS, "pad_short_to": self.min_samples,
                "library": library_versions(), "layers": list(self.layers),
                "definition": f"fadtk MERTModel hidden_states[{self.layer_index}], one vector per frame"}

    def _forward(self, clips: list) -> np.ndarray:
        """(N, frames, dim) hidden states of the chosen layer for clips of one length."""
        torch = self._torch
        inputs = self.processor(clips if len(clips) > 1 else clips[0], sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(**{k: v.to(self.device) for k, v in inputs.items()}, output_hidden_states=True)
        states = getattr(out, "hidden_states", None)
        if states is None or len(states) != self.settings["n_layers"] + 1:
            from transformers import __version__

            got = "none" if states is None else len(states)
            # transformers 5 records hidden states with hooks that only its own decorated forward
            # sets up; MERT's modeling_MERT.py overrides forward (checked: none under 5.24.0, 13
            # under 4.46.3 with the code of yizhilll/MERT scripts/mert_hf)
            hint = ("; the folder's own model code predates transformers 5: use transformers>=4.40,<5 for it"
                    if self.remote_code and int(__version__.split(".")[0]) >= 5 else "")
            raise UserError(f"the model code of this folder returned {got} hidden states under transformers "
                            f"{__version__} (expected {self.settings['n_layers'] + 1}){hint}", self.weights_path)
        return states[self.layer_index].float().cpu().numpy()

    def embed_waveforms(self, waveforms) -> list:
        """Per-clip (n_frames, dim) float32; clips of one length share a forward pass."""
        clips = [np.asarray(y, dtype=np.float32)[:self.max_samples] for y in waveforms]
        clips = [np.pad(y, (0, self.min_samples - len(y))) if len(y) < self.min_samples else y for y in clips]
        out = [None] * len(clips)
        for chunk in equal_length_batches(clips, self.batch_size):
            for i, frames in zip(chunk, self._forward([clips[i] for i in chunk])):
                out[i] = np.ascontiguousarray(frames, dtype=np.float32)
        return out

    def select(self, per_example, layer: str) -> np.ndarray:
        if layer != self.layer:
            raise UserError(f"this {self.name} embedder was built for {self.layer}, not '{layer}' "
                            "(get_embedder(..., layer=...))")
        return per_example

    def finalize(self, vectors):
        return np.asarray(vectors, dtype=np.float64)

    @staticmethod
    def check_weights(folder, *, name, trust_remote_code=False) -> None:
        """What building the embedder would refuse about ``folder``, without loading it."""
        check_folder(folder, name, trust_remote_code=trust_remote_code)


class Mert95mEmbedder(MertEmbedder):
    name, dim = "mert-v1-95m", 768
    layers = layer_names(12)


class Mert330mEmbedder(MertEmbedder):
    name, dim = "mert-v1-330m", 1024
    layers = layer_names(24)
