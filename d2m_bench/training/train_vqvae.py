"""Train a Jukebox-layout VQ-VAE from scratch on a dataset's music (all splits' train clips).

Loss (Jukebox VQVAE.forward): sum over levels of recons (recons_l1 * L1 + recons_l2 * L2) and
multispectral * multi-resolution STFT distance, plus commit * sum of commitment losses;
codebooks follow EMA updates with dead-code revival. Adam (Jukebox opt defaults lr 3e-4,
betas (0.9, 0.999)), gradient-norm clip. Output: ``<run>/vqvae.pt`` (loads with
``--vqvae`` in ``train d2m-*``) and ``<run>/checkpoint.pt`` (resume).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..errors import UserError
from ..models.vqvae import VQVAE, VQVAEConfig, save_vqvae
from . import runner
from .checkpoint import atomic_save, torch_load
from .config import VQVAETrainConfig, resolve, save_config
from .data import ClipDataset, Position, total_steps, training_batches

CKPT_FORMAT = "d2m-bench-vqvae-train/1"
MODEL_KEYS = ("levels", "downs_t", "strides_t", "emb_width", "l_bins", "l_mu", "width", "depth",
              "dilation_growth_rate", "multipliers", "commit", "multispectral", "recons_l1", "recons_l2")
# The settings a checkpoint's tensors depend on; loss weights may change on --resume.
SHAPE_KEYS = ("levels", "downs_t", "strides_t", "emb_width", "l_bins", "width", "depth", "dilation_growth_rate",
              "multipliers")


def model_config(cfg: VQVAETrainConfig) -> VQVAEConfig:
    return VQVAEConfig.from_dict({k: getattr(cfg, k) for k in MODEL_KEYS})


def train_vqvae(data_root, run_dir, *, overrides=None, config_file=None, resume=False, progress=True) -> dict:
    from torch.nn.parallel import DistributedDataParallel as DDP
    from ..progress import progress_bar

    run_dir = Path(run_dir)
    base = json.loads((run_dir / "config.json").read_text()) if resume and (run_dir / "config.json").is_file() else {}
    if resume and not base:
        raise UserError("--resume: no config.json in the run folder", run_dir)
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
            runner.set_rng_state(state["rng"])
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
                             "opt": opt.state_dict(), "rng": runner.rng_state()}, ckpt_path)
                save_vqvae(model, run_dir / "vqvae.pt", {"step": pos.step})

        metrics = {}
        for batch in training_batches(train_set, cfg, ctx, pos, total):
            t0 = time.perf_counter()
            audio = batch["audio"].to(ctx.device)
            # Seeded by the step being taken (pos already counts it), so a resumed run crops alike.
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + pos.step - 1)
            start = int(torch.randint(0, audio.shape[-1] - cfg.sample_length + 1, (1,), generator=g))
            net.train()
            loss, metrics, _ = net(audio[..., start:start + cfg.sample_length])
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
            if cfg.save_every and pos.step % cfg.save_every == 0:
                save()
        save()
        bar.close()
        log.close()
        return {"step": pos.step, "epoch": pos.epoch, "run_dir": str(run_dir), "vqvae": str(run_dir / "vqvae.pt"),
                "last": metrics}
    finally:
        runner.teardown()
