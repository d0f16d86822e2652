"""Training configurations: defaults (the paper's), size presets, file + CLI overrides.

Resolution order (later wins): dataclass defaults -> ``size`` preset -> config file (TOML or
JSON; tables are flattened, so ``[loss] lambda_wav = 40`` and ``lambda_wav = 40`` are the same)
-> command-line overrides. The resolved config is written to ``<run>/config.json``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import UserError


@dataclass
class D2MTrainConfig:
    level: str = "high"  # high = VQ-VAE level 2 (344 x 64 codes), low = level 1 (1378 x 64)
    size: str = "paper"  # "paper" or "tiny" (see SIZE_PRESETS); explicit values override the preset
    seed: int = 0
    batch_size: int = 16
    epochs: int = 3000  # released script: 3000 (its --epochs flag was ignored; here it is honoured)
    max_steps: int = 0  # > 0 stops after this many optimiser steps
    num_workers: int = 0
    drop_last: bool = True  # released code reshaped the last partial batch into garbage
    augment: bool = True  # random gain on train clips only; test clips are never augmented
    gain_min: float = 0.3
    gain_max: float = 1.0
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    straight_through: bool = True  # False = released behaviour (wav/mel losses carry no gradient)
    lambda_adv: float = 1.0
    lambda_fm: float = 3.0
    lambda_code_cont: float = 5.0  # L1 to the gt continuous encoder output (released code)
    lambda_code_quant: float = 8.0  # L1 to the gt quantised code (released code); paper: lambda_code 15
    lambda_wav: float = 40.0
    lambda_mel: float = 15.0
    mel_n_fft: int = 1024
    mel_hop: int = 256
    mel_n_mels: int = 128
    num_d: int = 3
    ndf: int = 32
    n_layers_d: int = 4
    downsamp_factor: int = 4
    d_width: float = 1.0
    g_width: float = 1.0
    motion_len: int = 800
    motion_feat: int = 1024
    genre_dim: int = 256  # used only when the dataset has genres (AIST++)
    fused_len: int = -1
    res_blocks: int = 4
    sigma: float = 100.0
    log_every: int = 1
    save_every: int = 1000
    sample_every: int = 1000
    n_samples: int = 10
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    vqvae: str = ""  # path to the frozen VQ-VAE
    trust_checkpoint: bool = False


@dataclass
class VQVAETrainConfig:
    size: str = "paper"
    seed: int = 0
    batch_size: int = 4
    epochs: int = 1000
    max_steps: int = 0
    num_workers: int = 0
    drop_last: bool = True
    augment: bool = True
    gain_min: float = 0.3
    gain_max: float = 1.0
    sample_length: int = 44032  # random crop; must be a multiple of the largest hop (128)
    lr: float = 3e-4
    beta1: float = 0.9
    beta2: float = 0.999
    clip: float = 1.0  # gradient-norm clip (Jukebox opt default)
    log_every: int = 1
    save_every: int = 1000
    device: str = "auto"
    # model (VQVAEConfig fields; Jukebox "vqvae" hparams)
    levels: int = 3
    downs_t: list = field(default_factory=lambda: [3, 2, 2])
    strides_t: list = field(default_factory=lambda: [2, 2, 2])
    emb_width: int = 64
    l_bins: int = 2048
    l_mu: float = 0.99
    width: int = 32
    depth: int = 4
    dilation_growth_rate: int = 3
    multipliers: list = field(default_factory=lambda: [2, 1, 1])
    commit: float = 0.02
    multispectral: float = 1.0
    recons_l1: float = 0.0
    recons_l2: float = 1.0


# "tiny" keeps every shape rule of the paper model but shrinks channels so CPU tests take seconds.
SIZE_PRESETS = {
    D2MTrainConfig: {
        "paper": {},
        "tiny": {"g_width": 1 / 32, "d_width": 1 / 16, "motion_len": 64, "motion_feat": 64, "genre_dim": 16,
                 "res_blocks": 1, "batch_size": 2},
    },
    VQVAETrainConfig: {
        "paper": {},
        "tiny": {"width": 8, "depth": 1, "l_bins": 64, "emb_width": 16, "multipliers": [1, 1, 1], "batch_size": 2},
    },
}


def _flatten(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v))
        else:
            out[k] = v
    return out


def read_config_file(path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read config ({exc.strerror})", path) from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except ValueError as exc:
        raise UserError(f"invalid config ({exc})", path) from None
    if not isinstance(data, dict):
        raise UserError("config must be a table/object", path)
    return _flatten(data)


def parse_override(text: str) -> tuple[str, object]:
    """``key=value`` with the value parsed as JSON when possible (numbers, true/false, lists)."""
    if "=" not in text:
        raise UserError(f"--set expects key=value, got '{text}'")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip().replace("-", "_"), value


def resolve(cls, *layers: dict):
    """Merge override dicts onto ``cls`` defaults (with the size preset first); type-checked."""
    merged = {}
    for layer in layers:
        merged.update({k: v for k, v in (layer or {}).items() if v is not None})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(merged) - set(known))
    if unknown:
        raise UserError(f"unknown setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    size = merged.get("size", "paper")
    if size not in SIZE_PRESETS[cls]:
        raise UserError(f"unknown size '{size}' (choose from {', '.join(SIZE_PRESETS[cls])})")
    values = asdict(cls())
    values.update(SIZE_PRESETS[cls][size])
    values.update(merged)
    for name, f in known.items():
        default = getattr(cls(), name)
        v = values[name]
        try:
            if isinstance(default, bool):
                if isinstance(v, str):
                    v = v.lower() in ("1", "true", "yes", "on")
                values[name] = bool(v)
            elif isinstance(default, int) and not isinstance(default, bool):
                if isinstance(v, float) and not v.is_integer():
                    raise ValueError(v)
                values[name] = int(v)
            elif isinstance(default, float):
                values[name] = float(v)
            elif isinstance(default, list):
                values[name] = list(v)
            else:
                values[name] = str(v)
        except (TypeError, ValueError):
            raise UserError(f"setting {name}: cannot use value {v!r}") from None
    return cls(**values)


def save_config(config, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(asdict(config), indent=2, sort_keys=True) + "\n")
