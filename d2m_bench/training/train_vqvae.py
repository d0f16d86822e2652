"""Train a Jukebox-layout VQ-VAE from scratch on a dataset's music (all splits' train clips).

Loss (Jukebox VQVAE.forward with its `vqvae` hparams): sum over levels of the lmix
reconstruction (recons_l2 * L2 + recons_linf * mean of the linf_k largest squared errors, both
divided by the data's l2 bandwidth) and multispectral * multi-resolution STFT distance / spec
bandwidth, plus commit * sum of commitment losses; codebooks follow EMA updates with dead-code
revival. Adam (Jukebox opt defaults lr 3e-4, betas (0.9, 0.999)) with a linear warm-up over
lr_warmup steps, gradient-norm clip 1. ``bandwidth_norm = false`` gives the unnormalised loss.
Output: ``<run>/vqvae.pt`` (loads with ``--vqvae`` in ``train d2m-*``) and ``<run>/checkpoint.pt``
(resume; also accepted by ``--vqvae``).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..errors import UserError
from ..models.vqvae import VQVAE, VQVAE_TRAIN_FORMAT, VQVAEConfig, save_vqvae
from . import runner
from .checkpoint import atomic_save, torch_load
from .config import VQVAETrainConfig, resolve, save_config
from .data import ClipDataset, Position, total_steps, training_batches

CKPT_FORMAT = VQVAE_TRAIN_FORMAT
MODEL_KEYS = ("levels", "downs_t", "strides_t", "emb_width", "l_bins", "l_mu", "width", "depth",
              "dilation_growth_rate", "multipliers", "commit", "multispectral", "recons_l1", "recons_l2",
              "recons_linf", "linf_k")
# The settings a checkpoint's tensors depend on; loss weights may change on --resume.
SHAPE_KEYS = ("levels", "downs_t", "strides_t", "emb_width", "l_bins", "width", "depth", "dilation_growth_rate",
              "multipliers")


def model_config(cfg: VQVAETrainConfig) -> VQVAEConfig:
    return VQVAEConfig.from_dict({k: getattr(cfg, k) for k in MODEL_KEYS})


def data_bandwidth(train_set: ClipDataset, *, seconds: float = 600.0) -> dict:
    """Jukebox ``calculate_bandwidth`` over the train clips (as loaded, no augmentation), up to
    ``seconds`` of audio: l2 = variance of the samples, l1 = mean |x|, spec = mean per clip of
    ||STFT||_F (n_fft 2048, hop 256, Hann window 1536). Jukebox samples every 16th item of its
    random crops; here every clip is used in manifest order."""
    import numpy as np

    from ..models.losses import stft_magnitude

    total = total_sq = l1 = 0.0
    n_seen, norms = 0, []
    augment, train_set.augment = train_set.augment, False
    try:
        for i in range(len(train_set)):
            y = train_set.audio(i).astype(np.float64)
            total, total_sq, l1, n_seen = total + y.sum(), total_sq + (y ** 2).sum(), l1 + np.abs(y).sum(), n_seen + y.size
            spec = stft_magnitude(torch.from_numpy(y)[None], n_fft=2048, hop=256, win=1536)
            norms.append(float(spec.pow(2).sum().sqrt()))
            if n_seen >= seconds * train_set.sr:
                break
    finally:
        train_set.augment = augment
    mean = total / n_seen
    # Plain floats: the checkpoint must load with weights_only=True.
    bw = {"l2": float(total_sq / n_seen - mean ** 2), "l1": float(l1 / n_seen), "spec": float(np.mean(norms))}
    if not all(v > 0 for v in bw.values()):
        raise UserError(f"the train music is silent or constant (bandwidth {bw}); nothing to normalise by",
                        train_set.dataset.root)
    return bw


def lr_factor(cfg: VQVAETrainConfig, step: int) -> float:
    """Jukebox's warm-up: lr x min(step / lr_warmup, 1) at the step-th update counted from 0."""
    return min(step / cfg.lr_warmup, 1.0) if cfg.lr_warmup else 1.0


def train_vqvae(data_root, run_dir, *, overrides=None, config_file=None, resume=False, progress=True) -> dict:
    from torch.nn.parallel import DistributedDataParallel as DDP
    from ..progress import progress_bar

    run_dir = Path(run_dir)
    base = json.loads((run_dir / "config.json").read_text()) if resume and (run_dir / "config.json").is_file() else {}
    if resume and not base:
        raise UserError("--resume: no config.json in the run folder", run_dir)
    if resume:
        # Runs saved before the Jukebox loss settings existed trained without them; keep it so.
        base = {"bandwidth_norm": False, "recons_linf": 0.0, "lr_warmup": 0, **base}
    cfg = resolve(VQVAETrainConfig, base, config_file or {}, overrides or {})
    mcfg = model_config(cfg)
    if cfg.sample_length % mcfg.hop_lengths[-1]:
        raise UserError(f"sample_length {cfg.sample_length} must be a multiple of the top hop {mcfg.hop_lengths[-1]}")
    ctx = runner.setup(cfg.device)
    try:
        runner.seed_everything(cfg.seed)  # same init on every rank; EMA codebooks are synchronised by all_reduce
        train_set = ClipDataset(data_root, "train", augment=cfg.augment, seed=cfg.seed,
                                gain=(cfg.gain_min, cfg.gain_max), audio_only=True)
        if cfg.sample_length > train_set.length:
            raise UserError(f"sample_length {cfg.sample_length} exceeds the clips' {train_set.length} samples")
        total = total_steps(train_set, cfg, ctx)
        bandwidth = None
        model = VQVAE(mcfg).to(ctx.device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        pos = Position()
        ckpt_path = run_dir / "checkpoint.pt"
        if resume:
            state = torch_load(ckpt_path)
            if not isinstance(state, dict) or state.get("format") != CKPT_FORMAT:
                raise UserError("not a d2m-bench VQ-VAE training checkpoint", ckpt_path)
            diffs = [(k, state["config"].get(k), getattr(cfg, k)) for k in SHAPE_KEYS
                     if state["config"].get(k) != getattr(cfg, k)]
            if diffs:
                k, old, new = diffs[0]
                more = f" and {len(diffs) - 1} more" if len(diffs) > 1 else ""
                raise UserError(f"--resume: the model in this run was built with {k}={old!r}, the settings now "
                                f"give {new!r}{more}; drop the override or start a new --out", ckpt_path)
            model.load_state_dict(state["model"])
            model.load_ema_state(state["ema"])
            opt.load_state_dict(state["opt"])
            pos = Position.from_state(state)
            note = runner.set_rng_state(state["rng"])
            if note and ctx.main:
                print(f"d2m-bench: warning: {note}", file=sys.stderr)
            bandwidth = state.get("bandwidth")
        if cfg.bandwidth_norm and bandwidth is None:
            bandwidth = data_bandwidth(train_set)
        if ctx.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / "config.json")
        net = DDP(model, broadcast_buffers=False) if ctx.world > 1 else model
        log = runner.StepLog(run_dir, ["loss", "recons", "spectral", "commit", "seconds"],
                             resume_step=pos.step if resume else None, enabled=ctx.main)
        bar = progress_bar(total=total, initial=min(pos.step, total), disable=not (progress and ctx.main),
                           unit="step", desc="vqvae")

        def save():
            if ctx.main:
                atomic_save({"format": CKPT_FORMAT, **pos.to_state(),
                             "config": asdict(cfg), "model": model.state_dict(), "ema": model.ema_state(),
                             "opt": opt.state_dict(), "rng": runner.rng_state(), "bandwidth": bandwidth}, ckpt_path)
                save_vqvae(model, run_dir / "vqvae.pt", {"step": pos.step})

        metrics = {}
        with runner.StopSignals() as stop:
            for batch in training_batches(train_set, cfg, ctx, pos, total):
                t0 = time.perf_counter()
                audio = batch["audio"].to(ctx.device)
                # Seeded by the step being taken (pos already counts it), so a resumed run crops alike.
                g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + pos.step - 1)
                start = int(torch.randint(0, audio.shape[-1] - cfg.sample_length + 1, (1,), generator=g))
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * lr_factor(cfg, pos.step - 1)
                net.train()
                loss, metrics, _ = net(audio[..., start:start + cfg.sample_length], bandwidth)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
                opt.step()
                metrics["seconds"] = time.perf_counter() - t0
                if pos.step % cfg.log_every == 0:
                    log.log(pos.step, pos.epoch, metrics)
                bar.update(1)
                bar.set_postfix(loss=f"{metrics['loss']:.4f}")
                runner.save_or_stop(stop, ctx, cfg, pos.step, save, ckpt_path, bar, log)
        save()
        bar.close()
        log.close()
        return {"step": pos.step, "epoch": pos.epoch, "run_dir": str(run_dir), "vqvae": str(run_dir / "vqvae.pt"),
                "last": metrics}
    finally:
        runner.teardown()
