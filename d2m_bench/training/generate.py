"""Write ground truth, VQ-VAE reconstructions and generated audio for a split.

Layout: ``OUT/gt/<id>.wav`` (the clip as the test loader gives it: peak 0.95, cropped/padded to
the segment length, never augmented), ``OUT/recon/<id>.wav`` (gt encoded and decoded at the
model's level: 44032 samples high / 44096 low for 2-s clips), ``OUT/generated/<id>.wav``
(the model's output, optionally denoised with noisereduce as the released generate script
did), all mono PCM_16 at the dataset rate, plus ``OUT/provenance.json`` (and a copy in
``OUT/generated/``, where eval looks for it). Same stems in every
folder, so ``d2m-bench eval --pred OUT/generated --gt OUT/gt`` pairs them by name.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..io.audio import write_audio
from ..errors import UserError


@torch.no_grad()
def write_generations(G, vqvae, dataset, out_dir, *, level: int, has_genre: bool, device,
                      parts=("gt", "recon", "generated"), denoise: bool = False, progress: bool = False) -> list[str]:
    """Generate every clip of ``dataset`` (batch 1, in manifest order); returns the segment ids."""
    from ..progress import progress_bar

    out_dir = Path(out_dir)
    was_training = G.training
    G.eval()
    ids = []
    try:
        for i in progress_bar(range(len(dataset)), disable=not progress, unit="clip", desc="generate"):
            item = dataset[i]
            sid = dataset.segments[i].segment_id
            audio = item["audio"].unsqueeze(0).to(device)
            if "gt" in parts:
                write_audio(out_dir / "gt" / f"{sid}.wav", item["audio"][0].numpy(), dataset.sr)
            if "recon" in parts:
                z, _ = vqvae.encode(audio, level)
                write_audio(out_dir / "recon" / f"{sid}.wav", _clip(vqvae.decode(z, level)), dataset.sr)
            if "generated" in parts:
                genre = item["genre"].view(1).to(device) if has_genre else None
                codes = G(item["motion"].unsqueeze(0).to(device), item["visual"].unsqueeze(0).to(device), genre)
                y = _clip(vqvae.decode_features(vqvae.lookup(codes, level), level))
                if denoise:
                    import noisereduce

                    y = noisereduce.reduce_noise(y=y, sr=dataset.sr).astype(np.float32)
                write_audio(out_dir / "generated" / f"{sid}.wav", y, dataset.sr)
            ids.append(sid)
    finally:
        G.train(was_training)
    return ids


def _clip(wav) -> np.ndarray:
    # PCM_16 cannot hold |y| > 1; clipping is what soundfile would do silently, made explicit here.
    return np.clip(wav.reshape(-1).float().cpu().numpy(), -1.0, 1.0)


def require_denoiser() -> None:
    """One-line UserError with the install hint when noisereduce is missing (before any work)."""
    from importlib.util import find_spec

    if find_spec("noisereduce") is None:
        raise UserError("denoising (the released default) needs noisereduce: pip install 'd2m-bench[denoise]', "
                        "or pass --no-denoise")


def generate(checkpoint, data_root, out_dir, *, split: str = "test", vqvae_path=None, denoise: bool = True,
             limit: int | None = None, device: str = "auto", trust: bool = False, progress: bool = True) -> dict:
    """Load a ``train d2m-*`` (or ``import d2m-gan``) checkpoint and write gt / recon / generated wavs.

    ``denoise`` (default, as the released generate script): noisereduce on the generated audio
    only; gt and recon are never denoised. Returns the provenance.
    """
    if denoise:
        require_denoiser()
    from ..data.dataset import Dataset
    from ..models.generator import D2MGenerator, GeneratorConfig
    from ..models.vqvae import frozen_vqvae
    from .checkpoint import CKPT_FORMAT, level_index, torch_load
    from .data import ClipDataset
    from .runner import setup

    state = torch_load(checkpoint, map_location="cpu")
    if not isinstance(state, dict) or state.get("format") != CKPT_FORMAT:
        raise UserError("not a d2m-bench D2M-GAN checkpoint (made by `d2m-bench train d2m-low/high`)", checkpoint)
    cfg = state["config"]
    ctx = setup(device)
    vq_path = vqvae_path or state["vqvae"]
    if not Path(vq_path).is_file():
        raise UserError("VQ-VAE recorded in the checkpoint not found; pass --vqvae PATH", vq_path)
    vqvae = frozen_vqvae(vq_path, ctx.device, trust=trust)
    gcfg = GeneratorConfig.from_dict(state["generator_config"])
    info = Dataset(data_root).info
    if info.name != state.get("dataset"):
        raise UserError(f"checkpoint was trained on '{state.get('dataset')}', dataset is '{info.name}'", data_root)
    level = level_index(cfg["level"])
    check_fits(gcfg, level, vqvae, info, checkpoint=checkpoint, vq_path=vq_path, data_root=data_root)
    G = D2MGenerator(gcfg).to(ctx.device)
    G.load_state_dict(state["generator"])
    dataset = ClipDataset(data_root, split, augment=False, limit=limit)
    motion = _motion_dependence(G, vqvae, dataset, level, gcfg.genre_dim > 0, cfg, state, ctx.device)
    t0 = time.time()
    ids = write_generations(G, vqvae, dataset, out_dir, level=level, has_genre=gcfg.genre_dim > 0,
                            device=ctx.device, denoise=denoise, progress=progress)
    provenance = {
        "checkpoint": str(Path(checkpoint).resolve()), "step": state["step"], "level": cfg["level"],
        "vqvae": str(Path(vq_path).resolve()), "dataset": str(Path(data_root).resolve()), "split": split,
        "n_clips": len(ids), "sample_rate": dataset.sr, "subtype": "PCM_16",
        "gt_samples": dataset.length, "model_samples": gcfg.code_len * vqvae.hop_lengths[level],
        "denoise": {"applied": denoise, "tool": "noisereduce", "version": _version("noisereduce") if denoise else None,
                    "applied_to": "generated" if denoise else None,
                    "call": "noisereduce.reduce_noise(y=y, sr=sr)" if denoise else None},
        "straight_through_training": cfg["straight_through"], "motion_dependence": motion,
        "seconds": round(time.time() - t0, 3),
        "segments": ids,
    }
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    text = json.dumps(provenance, indent=2) + "\n"
    (Path(out_dir) / "provenance.json").write_text(text)
    # Also beside the clips: `eval --pred OUT/generated` reads the provenance of the folder it scores.
    (Path(out_dir) / "generated" / "provenance.json").write_text(text)
    return provenance


def _motion_dependence(G, vqvae, dataset, level, has_genre, cfg, state, device) -> dict | None:
    """The probe figures of training (motion_check) on the first clips of this split, with the
    training run's last verdict beside them; a warning line when the model ignores the motion."""
    import sys

    if not len(dataset):
        return None
    from .motion_check import describe, motion_dependence, probe_batch, verdict

    probe = probe_batch(dataset, clips=max(2, int(cfg.get("probe_clips", 4))), device=device, has_genre=has_genre)
    threshold = float(cfg.get("min_token_change", 0.01))
    result = verdict(motion_dependence(G, vqvae, level, *probe), threshold, probe_clips=len(probe[0]),
                     training=state.get("motion_check"))
    if result["input_independent"]:
        print(f"d2m-bench: warning: this model ignores the dance: {describe(result)}; the generated clips will "
              "not follow the motion (recorded in provenance.json)", file=sys.stderr)
    return result


def check_fits(gcfg, level: int, vqvae, info, *, checkpoint, vq_path, data_root) -> None:
    """One line naming both files when the model's inputs or codes do not fit the dataset or the
    VQ-VAE; called before anything is written (a mismatch would otherwise surface as a torch
    error after gt and recon files exist)."""
    frames, dims = (int(v) for v in info.motion_shape)
    if (gcfg.motion_frames, gcfg.motion_dim, gcfg.visual_dim) != (frames, dims, int(info.visual_dim)):
        raise UserError(f"{checkpoint} takes ({gcfg.motion_frames}, {gcfg.motion_dim}) motion and {gcfg.visual_dim}-d "
                        f"visual features; {data_root} has ({frames}, {dims}) motion and {info.visual_dim}-d visual "
                        "features (build the dataset with the model's extractor)")
    seg = int(round(info.segment_seconds * info.sample_rate))
    tokens = seg // vqvae.hop_lengths[level] if vqvae.levels > level else None
    if tokens is None or (gcfg.emb_width, gcfg.code_len) != (vqvae.config.emb_width, tokens):
        have = (f"level {level} gives ({vqvae.config.emb_width}, {tokens}) codes per {seg}-sample clip"
                if tokens is not None else f"has no level {level} ({vqvae.levels} levels)")
        raise UserError(f"{checkpoint} makes ({gcfg.emb_width}, {gcfg.code_len}) codes at level {level}; "
                        f"the VQ-VAE {vq_path} {have}")


def _version(pkg: str):
    from ..versions import package_version

    return package_version(pkg, missing=None)
