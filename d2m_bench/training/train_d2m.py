"""D2M-GAN training (Zhu et al., ECCV 2022) on a built dataset, with the released defects fixed.

Per step, as released: one discriminator step (hinge) on the generator's continuous codes vs
the ground truth's continuous encoder features at the level, then one generator step on

    lambda_adv * (-sum_s mean D_s(x)) + lambda_fm * FM + lambda_code_cont * L1(x, enc(gt))
    + lambda_code_quant * L1(x, q(enc(gt))) + lambda_wav * L1(dec(q(x)), gt)
    + lambda_mel * L1(logmel(dec(q(x))), logmel(gt))

with Adam(1e-4, betas (0.5, 0.9)) for both. The VQ-VAE is frozen (eval mode, no EMA updates).
Defaults are the released behaviour (the lookup carries no gradient, so the wav/mel terms train
nothing); fixes (docs/deviations.md "Training"): opt-in straight-through lookup, drop_last, seeds +
resume, a checkpoint on SIGINT/SIGTERM, honoured epochs/paths/devices, DDP with a global batch,
TikTok-low shapes, no test augmentation.
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from ..errors import UserError
from ..models.discriminator import MultiScaleDiscriminator
from ..models.generator import D2MGenerator, GeneratorConfig
from ..models.layers import init_torch_zero_bias
from ..models.losses import LogMel, feature_matching_loss, hinge_d_loss, hinge_g_loss
from ..models.vqvae import frozen_vqvae  # noqa: F401 (also imported from here by the benchmarks)
from . import motion_check, runner
from .checkpoint import CKPT_FORMAT, LEVELS, atomic_save, level_index, torch_load  # noqa: F401
from .config import D2MTrainConfig, resolve, save_config
from .data import ClipDataset, Position, total_steps, training_batches

LOSS_COLUMNS = ["loss_d", "adv", "fm", "code_cont", "code_quant", "wav", "mel", "loss_g", "seconds",
                *motion_check.COLUMNS]


def generator_config(cfg: D2MTrainConfig, info, vqvae, *, has_genre: bool) -> GeneratorConfig:
    """Generator shapes from the training config, the dataset (motion/visual shapes, genres) and the VQ-VAE."""
    lvl = level_index(cfg.level)
    if len(info.motion_shape) != 2:
        raise UserError(f"dataset.json motion_shape must be [frames, dims], got {info.motion_shape}")
    seg_samples = int(round(info.segment_seconds * info.sample_rate))
    return GeneratorConfig(
        level=cfg.level, width=cfg.g_width, motion_frames=int(info.motion_shape[0]),
        motion_dim=int(info.motion_shape[1]), motion_len=cfg.motion_len, motion_feat=cfg.motion_feat,
        visual_dim=int(info.visual_dim), genre_dim=cfg.genre_dim if has_genre else 0, fused_len=cfg.fused_len,
        res_blocks=cfg.res_blocks, emb_width=vqvae.config.emb_width,
        code_len=seg_samples // vqvae.hop_lengths[lvl], sigma=cfg.sigma)


def build_discriminator(cfg: D2MTrainConfig) -> MultiScaleDiscriminator:
    return MultiScaleDiscriminator(num_d=cfg.num_d, ndf=cfg.ndf, n_layers=cfg.n_layers_d,
                                   stride=cfg.downsamp_factor, width=cfg.d_width)


def _batch_to(batch, device, has_genre):
    audio = batch["audio"].to(device)
    motion = batch["motion"].to(device)
    visual = batch["visual"].to(device)
    genre = batch["genre"].to(device) if has_genre else None
    return audio, motion, visual, genre


def decode_codes(vqvae, codes, level: int, *, straight_through: bool, grad_scale: float = 1.0):
    """Generator codes -> (quantised codes, waveform (B, 1, code_len * hop))."""
    q = vqvae.lookup(codes, level, straight_through=straight_through, grad_scale=grad_scale)
    if straight_through:
        return q, vqvae.decode_features(q, level)
    with torch.no_grad():
        return q, vqvae.decode_features(q, level)


def wav_mel_weight(cfg: D2MTrainConfig, step: int) -> float:
    """Factor on lambda_wav / lambda_mel at optimiser step ``step`` (1-based): the straight-through
    ramp min(1, step / st_warmup_steps); 1 without straight-through (the terms train nothing then)."""
    if not cfg.straight_through or cfg.st_warmup_steps <= 0:
        return 1.0
    return min(1.0, step / cfg.st_warmup_steps)


def train_step(batch, *, G, D, vqvae, mel, optG, optD, cfg: D2MTrainConfig, level: int, has_genre: bool, device,
               step: int = 1):
    audio, motion, visual, genre = _batch_to(batch, device, has_genre)
    n = audio.shape[0]
    codes = G(motion, visual, genre)
    with torch.no_grad():
        gt_cont = vqvae.encoders[level](audio)[-1]
        gt_quant = vqvae.dequantise(vqvae.bottleneck.level_blocks[level].encode(gt_cont), level)
    if gt_cont.shape != codes.shape:
        raise UserError(f"generator codes {tuple(codes.shape)} do not match the VQ-VAE's {tuple(gt_cont.shape)}")
    # The code terms are built before the discriminator runs, as released: autograd sums the
    # gradients that reach `codes` in reverse order of creation, and that order decides the last bits.
    code_cont = F.l1_loss(codes, gt_cont)
    code_quant = F.l1_loss(codes, gt_quant)

    # Discriminator: fake then real in two forwards, as released; that makes the step bit-equal to
    # upstream's (one forward on [fake; real] rounds differently, and Adam turns the rounding of
    # near-cancelling bias gradients into ~0.3 lr). A DDP module takes one forward per backward,
    # so there the two go through as one batch.
    if isinstance(D, DistributedDataParallel):
        outs = D(torch.cat([codes.detach(), gt_cont]))
        fake_d = [[f[:n] for f in scale] for scale in outs]
        real_d = [[f[n:] for f in scale] for scale in outs]
    else:
        fake_d, real_d = D(codes.detach()), D(gt_cont)
    loss_d = hinge_d_loss(real_d, fake_d)
    optD.zero_grad(set_to_none=True)
    loss_d.backward()
    optD.step()

    # Generator (feature-matching targets are the real features from the D step, as released).
    fake_g = D(codes)
    adv = hinge_g_loss(fake_g)
    fm = feature_matching_loss(real_d, fake_g)
    _, wav = decode_codes(vqvae, codes, level, straight_through=cfg.straight_through, grad_scale=cfg.st_grad_scale)
    target = audio[..., :wav.shape[-1]]
    wav_l1 = F.l1_loss(wav, target)
    mel_l1 = F.l1_loss(mel(wav), mel(target))
    ramp = wav_mel_weight(cfg, step)
    loss_g = (cfg.lambda_adv * adv + cfg.lambda_fm * fm + cfg.lambda_code_cont * code_cont
              + cfg.lambda_code_quant * code_quant + ramp * (cfg.lambda_wav * wav_l1 + cfg.lambda_mel * mel_l1))
    optG.zero_grad(set_to_none=True)
    loss_g.backward()
    optG.step()
    values = {"loss_d": loss_d, "adv": adv, "fm": fm, "code_cont": code_cont, "code_quant": code_quant,
              "wav": wav_l1, "mel": mel_l1, "loss_g": loss_g}
    return {k: float(v.detach()) for k, v in values.items()}


D_KEYS = ("num_d", "ndf", "n_layers_d", "downsamp_factor", "d_width")


def check_resume_shapes(state: dict, cfg: D2MTrainConfig, gcfg: GeneratorConfig, ckpt_path) -> None:
    """UserError naming the first differing setting when cfg would not fit the checkpoint's models."""
    saved_g = state.get("generator_config", {})
    names = {"width": "g_width"}  # GeneratorConfig field -> training setting
    diffs = [(names.get(k, k), saved_g.get(k), v) for k, v in gcfg.to_dict().items() if saved_g.get(k) != v]
    diffs += [(k, state["config"].get(k), getattr(cfg, k)) for k in D_KEYS if state["config"].get(k) != getattr(cfg, k)]
    if diffs:
        k, old, new = diffs[0]
        more = f" and {len(diffs) - 1} more" if len(diffs) > 1 else ""
        raise UserError(f"--resume: the models in this run were built with {k}={old!r}, the settings now give "
                        f"{new!r}{more}; drop the override or start a new --out", ckpt_path)


def mean_over_ranks(values: dict, device) -> dict:
    """Average logged losses over DDP ranks (each rank saw a different part of the batch)."""
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def resolve_run_config(run_dir, *, overrides: dict, config_file: dict | None = None, resume: bool = False):
    saved = Path(run_dir) / "config.json"
    base = {}
    if resume:
        if not saved.is_file():
            raise UserError("--resume: no config.json in the run folder", run_dir)
        import json

        base = json.loads(saved.read_text())
    return resolve(D2MTrainConfig, base, config_file or {}, overrides)


def train_d2m(data_root, run_dir, *, overrides: dict | None = None, config_file: dict | None = None,
              resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) a D2M-GAN model; returns a summary dict. Works under torchrun (DDP)."""
    run_dir = Path(run_dir)
    cfg = resolve_run_config(run_dir, overrides=overrides or {}, config_file=config_file, resume=resume)
    if cfg.vqvae:
        # config.json and the checkpoint outlive the working directory (generate, --resume elsewhere).
        cfg.vqvae = str(Path(cfg.vqvae).resolve())
    ctx = runner.setup(cfg.device)
    try:
        return _train(data_root, run_dir, cfg, ctx, resume=resume, progress=progress)
    finally:
        runner.teardown()


def _train(data_root, run_dir, cfg, ctx, *, resume, progress):
    DDP = DistributedDataParallel
    from ..progress import progress_bar

    level = level_index(cfg.level)
    ckpt_path = run_dir / "checkpoint.pt"
    state = None
    if resume:
        if not ckpt_path.is_file():
            raise UserError("--resume: no checkpoint.pt in the run folder", run_dir)
        state = torch_load(ckpt_path, map_location="cpu")
        if not isinstance(state, dict) or state.get("format") != CKPT_FORMAT:
            raise UserError("not a d2m-bench D2M-GAN checkpoint", ckpt_path)
        saved_level = state["config"]["level"]
        if saved_level != cfg.level:
            raise UserError(f"--resume: this run trains the {saved_level} level, not {cfg.level}; "
                            f"use `d2m-bench train d2m-{saved_level} --resume`", ckpt_path)
    runner.seed_everything(cfg.seed + ctx.rank)

    train_set = ClipDataset(data_root, "train", augment=cfg.augment, seed=cfg.seed, gain=(cfg.gain_min, cfg.gain_max))
    test_set = ClipDataset(data_root, "test", augment=False, limit=cfg.n_samples)
    total = total_steps(train_set, cfg, ctx)
    has_genre = train_set.has_genre and cfg.genre_dim > 0
    vqvae = frozen_vqvae(cfg.vqvae, ctx.device, trust=cfg.trust_checkpoint)
    gcfg = generator_config(cfg, train_set.info, vqvae, has_genre=has_genre)
    if state is not None:
        # Before anything is written: a shape-changing override would fail in load_state_dict
        # after config.json had already been replaced.
        check_resume_shapes(state, cfg, gcfg, ckpt_path)
    if ctx.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.json")
    G = D2MGenerator(gcfg).to(ctx.device)
    if cfg.g_init == "torch-zero-bias" and state is None:
        init_torch_zero_bias(G)
    D = build_discriminator(cfg).to(ctx.device)
    optG = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    optD = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    mel = LogMel(sr=train_set.sr, n_fft=cfg.mel_n_fft, hop=cfg.mel_hop, win=cfg.mel_n_fft,
                 n_mels=cfg.mel_n_mels).to(ctx.device)
    pos = Position()
    notes = list(state.get("notes", [])) if state is not None else []
    if state is not None:
        G.load_state_dict(state["generator"])
        D.load_state_dict(state["discriminator"])
        # `import d2m-gan` without optG.pt / optD.pt / RNG state: fresh Adam moments, seeded RNG.
        for opt, key in ((optG, "optG"), (optD, "optD")):
            if state.get(key) is not None:
                opt.load_state_dict(state[key])
        pos = Position.from_state(state)
        note = runner.set_rng_state(state["rng"]) if state.get("rng") is not None else None
        if note:
            notes.append(f"resumed at step {pos.step}: {note}")
            if ctx.main:
                print(f"d2m-bench: warning: {note}", file=sys.stderr)
    if ctx.world > 1:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        G_train, D_train = DDP(G, device_ids=ids), DDP(D, device_ids=ids)
    else:
        G_train, D_train = G, D

    # A fixed probe: the first train clips as loaded for testing (never augmented).
    probe = (motion_check.probe_batch(ClipDataset(data_root, "train", augment=False, limit=cfg.probe_clips),
                                      clips=cfg.probe_clips, device=ctx.device, has_genre=has_genre)
             if ctx.main and cfg.probe_clips else None)
    check = dict(state.get("motion_check") or {}) if state is not None else {}
    log = runner.StepLog(run_dir, LOSS_COLUMNS, resume_step=pos.step if resume else None, enabled=ctx.main)
    bar = progress_bar(total=total, initial=min(pos.step, total), disable=not (progress and ctx.main),
                       unit="step", desc=f"d2m-{cfg.level}")

    def save():
        if ctx.main:
            _judge_motion(G, vqvae, level, probe, cfg, pos.step, check, notes)
            atomic_save({"format": CKPT_FORMAT, **pos.to_state(),
                         "config": asdict(cfg), "generator_config": gcfg.to_dict(), "dataset": train_set.info.name,
                         "vqvae": cfg.vqvae, "generator": G.state_dict(), "discriminator": D.state_dict(),
                         "optG": optG.state_dict(), "optD": optD.state_dict(), "rng": runner.rng_state(),
                         "notes": notes, "motion_check": check or None,
                         **({"imported": state["imported"]} if state and "imported" in state else {})},
                        ckpt_path)

    last = {}
    with runner.StopSignals() as stop:
        for batch in training_batches(train_set, cfg, ctx, pos, total):
            last = _step(batch, G_train, D_train, vqvae, mel, optG, optD, cfg, level, has_genre, ctx, pos)
            if pos.step % cfg.log_every == 0:
                if probe is not None:
                    last.update(_motion_figures(G, vqvae, level, probe))
                log.log(pos.step, pos.epoch, last)
            bar.update(1)
            bar.set_postfix(d=f"{last['loss_d']:.3f}", g=f"{last['loss_g']:.3f}")
            runner.save_or_stop(stop, ctx, cfg, pos.step, save, ckpt_path, bar, log)
            if ctx.main and cfg.sample_every and pos.step % cfg.sample_every == 0:
                from .generate import write_generations

                write_generations(G, vqvae, test_set, run_dir / "samples" / f"step_{pos.step:07d}", level=level,
                                  has_genre=has_genre, device=ctx.device, parts=("generated",))
    save()
    bar.close()
    log.close()
    return {"step": pos.step, "epoch": pos.epoch, "run_dir": str(run_dir), "last": last,
            "checkpoint": str(ckpt_path), "motion_check": check or None}


def _motion_figures(G, vqvae, level, probe) -> dict:
    """The probe figures for a log row (NaN where a figure needs two clips)."""
    figures = motion_check.motion_dependence(G, vqvae, level, *probe)
    return {k: float("nan") if v is None else v for k, v in figures.items()}


def _judge_motion(G, vqvae, level, probe, cfg, step, check, notes) -> None:
    """At each checkpoint and at the end, once past motion_check_after: record the verdict in
    ``check`` (saved in the checkpoint) and, the first time the motion changes less than
    min_token_change of the tokens, print one warning line and add it to the run's notes.

    Judged when a checkpoint is written rather than at every log row: models that do learn the
    motion often pass through an input-independent plateau first (docs/train.md)."""
    if probe is None or step < cfg.motion_check_after:
        return
    figures = motion_check.motion_dependence(G, vqvae, level, *probe)
    warned_at = check.get("warned_at")
    check.update(motion_check.verdict(figures, cfg.min_token_change, step=step, probe_clips=len(probe[0])))
    check["warned_at"] = warned_at
    if check["input_independent"] and warned_at is None:
        check["warned_at"] = step
        text = (f"at step {step} the model ignores the dance: {motion_check.describe(check)}; its audio will not "
                "follow the motion (docs/train.md, Motion dependence)")
        notes.append(text)
        print(f"d2m-bench: warning: {text}", file=sys.stderr)


def _step(batch, G_train, D_train, vqvae, mel, optG, optD, cfg, level, has_genre, ctx, pos):
    t0 = time.perf_counter()
    G_train.train()
    D_train.train()
    last = train_step(batch, G=G_train, D=D_train, vqvae=vqvae, mel=mel, optG=optG, optD=optD, cfg=cfg,
                      level=level, has_genre=has_genre, device=ctx.device, step=pos.step)
    if ctx.world > 1:
        last = mean_over_ranks(last, ctx.device)
    last["seconds"] = time.perf_counter() - t0
    return last
