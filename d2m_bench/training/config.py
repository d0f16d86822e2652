"""Training configurations: defaults (the paper's), size presets, file + CLI overrides.

Resolution order (later wins): dataclass defaults -> ``size`` preset -> config file (TOML or
JSON; tables are flattened, so ``[loss] lambda_wav = 40`` and ``lambda_wav = 40`` are the same)
-> command-line overrides. The resolved config is written to ``<run>/config.json``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import UserError


@dataclass
class D2MTrainConfig:
    level: str = "high"  # high = VQ-VAE level 2 (344 x 64 codes), low = level 1 (1378 x 64)
    size: str = "paper"  # "paper" or "tiny" (see SIZE_PRESETS); explicit values override the preset
    seed: int = 0
    batch_size: int = 16  # global batch (split across DDP ranks), as the released single-GPU 16
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
    # Released behaviour: the lookup runs under no_grad, so the wav/mel terms train nothing.
    # True passes their gradient to the codes (x + sg(q - x)), scaled by st_grad_scale: at 1 (full
    # weight) tiny d2m-low diverged (code L1 2.2 -> 105 in 200 steps), at 0.01 it did not (docs/train.md).
    straight_through: bool = False
    st_warmup_steps: int = 0  # straight-through only: wav/mel weights ramp linearly from 0 over these steps
    st_grad_scale: float = 0.01  # straight-through only: factor on the gradient the lookup passes to the codes
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
    # "released": plain convs N(0, 0.02) as MelGAN/D2M-GAN weights_init. "torch-zero-bias" (fix,
    # opt-in): torch's default conv init and every generator bias zero; at tiny width the released
    # init leaves outputs input-independent (relative spread across clips ~1e-7), docs/train.md.
    g_init: str = "released"
    log_every: int = 1
    save_every: int = 1000
    sample_every: int = 1000
    n_samples: int = 10
    # Motion dependence (training/motion_check.py), logged every log_every steps on the first
    # probe_clips train clips. Judged whenever a checkpoint is written from step
    # motion_check_after on: a model whose tokens change by less than min_token_change (a
    # fraction) when the motion is shuffled and when it is zeroed gets one warning line and a
    # record in the run.
    probe_clips: int = 4
    motion_check_after: int = 100
    min_token_change: float = 0.01
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
    augment: bool = False  # Jukebox has no gain augmentation; True = random gain U(gain_min, gain_max)
    gain_min: float = 0.3
    gain_max: float = 1.0
    sample_length: int = 44032  # random crop; must be a multiple of the largest hop (128)
    lr: float = 3e-4
    beta1: float = 0.9
    beta2: float = 0.999
    clip: float = 1.0  # gradient-norm clip (Jukebox opt default)
    lr_warmup: int = 100  # Jukebox: lr x min(step / lr_warmup, 1), step counted from 0; 0 = none
    bandwidth_norm: bool = True  # Jukebox: losses divided by the data's l2 / spec "bandwidth" statistics
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
    recons_linf: float = 0.02  # Jukebox lmix_linf: mean of the linf_k largest squared errors per clip
    linf_k: int = 2048


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
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"setting {name}: cannot use value {v!r}") from None
    cfg = cls(**values)
    validate(cfg)
    return cfg


G_INITS = ("released", "torch-zero-bias")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


# name -> (lowest, highest, lowest allowed?): a number outside is a UserError before any work.
_RANGES = {
    D2MTrainConfig: {
        "seed": (0, None, True), "batch_size": (1, None, True), "epochs": (1, None, True),
        "max_steps": (0, None, True), "num_workers": (0, None, True), "gain_min": (0, None, False),
        "gain_max": (0, None, False), "lr_g": (0, None, False), "lr_d": (0, None, False),
        "beta1": (0, 1, True), "beta2": (0, 1, True), "st_warmup_steps": (0, None, True),
        "st_grad_scale": (0, None, True), "lambda_adv": (0, None, True), "lambda_fm": (0, None, True),
        "lambda_code_cont": (0, None, True), "lambda_code_quant": (0, None, True), "lambda_wav": (0, None, True),
        "lambda_mel": (0, None, True), "mel_n_fft": (1, None, True), "mel_hop": (1, None, True),
        "mel_n_mels": (1, None, True), "num_d": (1, None, True), "ndf": (1, None, True),
        "n_layers_d": (1, None, True), "downsamp_factor": (1, None, True), "d_width": (0, None, False),
        "g_width": (0, None, False), "motion_len": (1, None, True), "motion_feat": (1, None, True),
        "genre_dim": (0, None, True), "fused_len": (-1, None, True), "res_blocks": (0, None, True),
        "sigma": (0, None, False), "log_every": (1, None, True), "save_every": (0, None, True),
        "sample_every": (0, None, True), "n_samples": (0, None, True),
        "probe_clips": (0, None, True), "motion_check_after": (0, None, True), "min_token_change": (0, 1, True),
    },
    VQVAETrainConfig: {
        "seed": (0, None, True), "batch_size": (1, None, True), "epochs": (1, None, True),
        "max_steps": (0, None, True), "num_workers": (0, None, True), "gain_min": (0, None, False),
        "gain_max": (0, None, False), "sample_length": (1, None, True), "lr": (0, None, False),
        "beta1": (0, 1, True), "beta2": (0, 1, True), "clip": (0, None, True), "lr_warmup": (0, None, True),
        "log_every": (1, None, True), "save_every": (0, None, True), "levels": (1, None, True),
        "emb_width": (1, None, True), "l_bins": (1, None, True), "l_mu": (0, 1, True), "width": (1, None, True),
        "depth": (1, None, True), "dilation_growth_rate": (1, None, True), "commit": (0, None, True),
        "multispectral": (0, None, True), "recons_l1": (0, None, True), "recons_l2": (0, None, True),
        "recons_linf": (0, None, True), "linf_k": (1, None, True),
    },
}


def _range_text(lo, hi, lo_ok) -> str:
    text = f"{'>=' if lo_ok else '>'} {lo}"
    return text + (f" and < {hi}" if hi is not None else "")


def validate(cfg) -> None:
    """Finite numbers in range, known choices, consistent lists: one-line UserError otherwise."""
    for name, (lo, hi, lo_ok) in _RANGES[type(cfg)].items():
        v = getattr(cfg, name)
        ok = _finite(v) and (v >= lo if lo_ok else v > lo) and (hi is None or v < hi)
        if not ok:
            raise UserError(f"setting {name}: must be a finite number {_range_text(lo, hi, lo_ok)}, got {v!r}")
    if cfg.gain_min > cfg.gain_max:
        raise UserError(f"setting gain_min ({cfg.gain_min}) must not exceed gain_max ({cfg.gain_max})")
    if isinstance(cfg, D2MTrainConfig):
        if cfg.level not in ("high", "low"):
            raise UserError(f"setting level: must be 'high' or 'low', got {cfg.level!r}")
        if cfg.g_init not in G_INITS:
            raise UserError(f"setting g_init: must be one of {', '.join(G_INITS)}, got {cfg.g_init!r}")
        return
    for name in ("downs_t", "strides_t", "multipliers"):
        v = getattr(cfg, name)
        if len(v) != cfg.levels or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v):
            raise UserError(f"setting {name}: must be {cfg.levels} whole numbers >= 1 (one per level), got {v!r}")


def save_config(config, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(asdict(config), indent=2, sort_keys=True) + "\n")
