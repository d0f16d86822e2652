"""Import the released D2M-GAN weights (upstream layout) as a d2m-bench run.

The released training script saves ``mencoder.pt`` (motion encoder), ``netG.pt`` (the level's
code generator), ``netD.pt`` and the optimisers ``optG.pt`` / ``optD.pt`` as bare state dicts
(torch 1.7: weight-normed convs store ``<name>.weight_g`` / ``<name>.weight_v``); the published
Google-Drive checkpoints hold ``mencoder.pt`` + ``netG.pt`` per level. The frozen codec is a
Jukebox-layout VQ-VAE (``vqvae_high.pt`` / ``vqvae_low.pt``, or ``vqvae.pth.tar``).

Module names of d2m-bench's generator mirror upstream's (``lin1``, ``model.<i>``, ``lin2``;
``lin``, ``genre_embed``, ``fc``), so importing is: rename the old weight-norm keys to torch's
parametrization names, prefix ``mencoder.`` / ``generator.``, read the sizes off the tensors, and
load strictly. The result is a run folder that ``generate`` and ``train d2m-* --resume`` accept.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict
from pathlib import Path

from ..errors import UserError
from .checkpoint import level_index

# torch.nn.utils.parametrizations.weight_norm keeps g as original0 and v as original1.
_OLD_WN = re.compile(r"^(.*)\.weight_(g|v)$")
PAPER_SHAPES = {"aistpp": {"motion_frames": 120, "motion_dim": 219, "genre": True},
                "tiktok": {"motion_frames": 60, "motion_dim": 75, "genre": False}}


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_weight_norm(state: dict) -> dict:
    """Upstream state dict -> parametrization names; drops a DataParallel ``module.`` prefix.

    ``a.weight_g`` -> ``a.parametrizations.weight.original0``, ``a.weight_v`` -> ``...original1``.
    Keys already in the new form pass through unchanged.
    """
    out = {}
    for key, value in state.items():
        if key.startswith("module."):
            key = key[len("module."):]
        m = _OLD_WN.match(key)
        if m:
            key = f"{m.group(1)}.parametrizations.weight.original{0 if m.group(2) == 'g' else 1}"
        out[key] = value
    return out


def _state_dict(path, what: str) -> dict:
    from .checkpoint import torch_load

    obj = torch_load(path, map_location="cpu")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(hasattr(v, "shape") for v in obj.values()):
        raise UserError(f"not a {what} state dict (expected a dict of tensors as saved by the released code)", path)
    return convert_weight_norm(obj)


def _weight(state: dict, prefix: str):
    """Effective weight shape of a conv / linear, weight-normed or not."""
    for key in (f"{prefix}.weight", f"{prefix}.parametrizations.weight.original1"):
        if key in state:
            return tuple(state[key].shape)
    return None


def generator_config_from_state(mencoder: dict, netg: dict, *, level: str, dataset: str, code_len: int,
                                emb_width: int, sources=("mencoder", "netG")):
    """Sizes of the released generator read off its tensors (paper: width 1, 4 residual blocks)."""
    from ..models.generator import GeneratorConfig

    lin1, conv0, lin2 = _weight(mencoder, "lin1"), _weight(mencoder, "model.0"), _weight(mencoder, "lin2")
    if not (lin1 and conv0 and lin2):
        raise UserError("no motion encoder inside (lin1 / model.0 / lin2 missing)", sources[0])
    shortcuts = {k.split(".")[1] for k in mencoder if ".shortcut." in k}
    if len(shortcuts) % 3:
        raise UserError(f"motion encoder has {len(shortcuts)} residual blocks, not 3 stacks of equal depth", sources[0])
    genre = netg.get("genre_embed.weight")
    lin = _weight(netg, "lin")
    genre_dim = int(genre.shape[1]) if genre is not None else 0
    expected = PAPER_SHAPES[dataset]
    if expected["genre"] != bool(genre_dim):
        raise UserError(f"this netG {'has no' if expected['genre'] else 'has a'} genre embedding, "
                        f"which does not fit a {dataset} model", sources[1])
    motion_feat = lin2[0]
    visual_dim = (lin[1] - motion_feat - genre_dim) if lin else 2048
    return GeneratorConfig(
        level=level, width=conv0[0] / 256, motion_frames=conv0[1], motion_dim=lin1[1], motion_len=lin1[0],
        motion_feat=motion_feat, visual_dim=visual_dim, n_genres=int(genre.shape[0]) if genre is not None else 10,
        genre_dim=genre_dim, fused_len=lin[0] if lin else 0, res_blocks=len(shortcuts) // 3, emb_width=emb_width,
        code_len=code_len)


def discriminator_settings(state: dict, path) -> dict:
    """num_d, ndf, n_layers_d, downsamp_factor, d_width of a released ``netD`` state dict."""
    discs = sorted({int(k.split(".")[1].split("_")[1]) for k in state if k.startswith("model.disc_")})
    first = _weight(state, "model.disc_0.model.layer_0.1")
    layers = {k.split(".")[3] for k in state if k.startswith("model.disc_0.model.")}
    strided = _weight(state, "model.disc_0.model.layer_1.0")
    if not discs or not first or not strided:
        raise UserError("not a D2M-GAN discriminator state dict (model.disc_<i>.model.layer_<k> missing)", path)
    # Upstream's ndf is 32; a narrower file is read as our width multiplier on that.
    return {"num_d": len(discs), "ndf": 32, "n_layers_d": len(layers) - 3,
            "downsamp_factor": (strided[2] - 1) // 10, "d_width": first[0] / 32}


def check_generator_fits(g_state: dict, netg, *, level: str, vq, vqvae, code_len: int) -> None:
    """One-line errors naming both files when netG is of the other level, or its codes do not fit
    the VQ-VAE (codebook width, tokens per clip); before any model is built."""
    # The low generator opens with a reflection pad (model.0 has no weights), the high one with a conv.
    found = "low" if "model.0.weight" not in g_state and "model.1.weight" in g_state else "high"
    if found != level:
        raise UserError(f"{netg} is a {found}-level generator (its first layer), but --level is {level}")
    convs = [int(m.group(1)) for k in g_state for m in [re.match(r"^model\.(\d+)\.weight$", k)] if m]
    if convs:
        emb = int(g_state[f"model.{max(convs)}.weight"].shape[0])
        if emb != vq.config.emb_width:
            raise UserError(f"{netg} makes {emb}-channel codes, {vqvae} has a {vq.config.emb_width}-wide codebook "
                            f"(codes (B, {emb}, T) vs codebook ({vq.config.l_bins}, {vq.config.emb_width}))")
    if "fc.weight" in g_state and int(g_state["fc.weight"].shape[0]) != code_len:
        raise UserError(f"{netg} makes codes of length {int(g_state['fc.weight'].shape[0])}, {vqvae} level "
                        f"{level_index(level)} has {code_len} tokens per clip")


def _load(module, state, path, what):
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines()[1:3]]
        raise UserError(f"{what} weights do not fit the D2M-GAN layout ({' '.join(lines)[:300]})", path) from None


# Upstream's modules register their children in another order than d2m-bench's (d2m_modules.py:
# motion_encoder lin1, lin2, model; vqEncoder_low lin, fc, genre_embed, model), and an optimiser
# state is keyed by parameter position. Names absent from a model (TikTok has no genre_embed,
# TikTok-low no lin) are skipped; d2m-bench's extra high-level fc (non-paper sizes only) goes last.
UPSTREAM_CHILD_ORDER = {"mencoder": ("lin1", "lin2", "model"),
                        "high": ("lin", "genre_embed", "model", "fc"),
                        "low": ("lin", "fc", "genre_embed", "model")}


def upstream_parameter_order(G) -> list:
    """G's parameters in the order of upstream's ``list(mencoder.parameters()) + list(encoder.parameters())``."""
    out = []
    for module, order in ((G.mencoder, UPSTREAM_CHILD_ORDER["mencoder"]),
                          (G.generator, UPSTREAM_CHILD_ORDER[G.config.level])):
        children = dict(module.named_children())
        if set(children) - set(order):
            raise AssertionError(f"no upstream order for {sorted(set(children) - set(order))}")
        for name in order:
            if children.get(name) is not None:
                out.extend(children[name].parameters())
    return out


def _optimizer_state(path, upstream_params, params, what):
    """An upstream Adam state dict re-keyed to ``params``' order; ``upstream_params`` are the same
    parameters in the order upstream's optimiser listed them. Every moment's shape is checked."""
    from .checkpoint import torch_load

    state = torch_load(path, map_location="cpu")
    if not isinstance(state, dict) or "state" not in state or "param_groups" not in state:
        raise UserError(f"not an optimiser state dict ({what})", path)
    if len(state["param_groups"]) != 1:
        raise UserError(f"{what} has {len(state['param_groups'])} parameter groups; the released script used one", path)
    ids = list(state["param_groups"][0]["params"])
    if len(ids) != len(params):
        raise UserError(f"{what} holds {len(ids)} parameters, the model has {len(params)}", path)
    position = {id(p): i for i, p in enumerate(params)}
    moments = {}
    for i, p in zip(ids, upstream_params):
        s = state["state"].get(i, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in s and tuple(s[key].shape) != tuple(p.shape):
                raise UserError(f"{what} parameter {i} has shape {tuple(s[key].shape)}, the model's is "
                                f"{tuple(p.shape)}", path)
        if s:
            moments[position[id(p)]] = s
    group = {**state["param_groups"][0], "params": list(range(len(params)))}
    return {"state": moments, "param_groups": [group]}


def import_vqvae(src, out, *, trust: bool = False) -> dict:
    """A Jukebox-layout VQ-VAE file (D2M-GAN ``vqvae_*.pt``, Jukebox ``vqvae.pth.tar``, ours) ->
    ``out`` in d2m-bench's format (config + EMA state beside the weights); returns its summary."""
    from ..models.vqvae import load_vqvae, save_vqvae

    model = load_vqvae(src, trust=trust)
    extra = {"imported_from": str(Path(src).resolve()), "sha256": sha256(src)}
    save_vqvae(model, out, extra)
    return {"vqvae": str(Path(out).resolve()), "hop_lengths": model.hop_lengths, **extra}


def import_d2m_gan(*, mencoder, netg, vqvae, out, level: str, dataset: str, netd=None, optg=None, optd=None,
                   step: int = 0, segment_samples: int = 44100, trust: bool = False) -> dict:
    """Write ``out/checkpoint.pt``, ``out/config.json`` and ``out/vqvae.pt`` from released files.

    Checks everything before writing: every state dict loads strictly into the model built from
    its own shapes. Missing ``netD`` / optimiser files give a freshly initialised discriminator
    (seed 0) / fresh Adam state, recorded under ``imported`` in the checkpoint.
    """
    import torch

    from ..models.generator import D2MGenerator
    from .checkpoint import atomic_save
    from .config import D2MTrainConfig, resolve, save_config
    from .checkpoint import CKPT_FORMAT
    from .train_d2m import build_discriminator
    from ..models.vqvae import load_vqvae

    lvl = level_index(level)
    if dataset not in PAPER_SHAPES:
        raise UserError(f"dataset must be one of {', '.join(PAPER_SHAPES)}, got '{dataset}'")
    out = Path(out)
    if (out / "checkpoint.pt").exists():
        raise UserError("already holds a checkpoint.pt; choose a new folder", out)
    vq = load_vqvae(vqvae, trust=trust)
    if vq.levels <= lvl:
        raise UserError(f"{vqvae} has {vq.levels} level(s); a {level}-level model decodes with level {lvl}")
    code_len = segment_samples // vq.hop_lengths[lvl]
    m_state, g_state = _state_dict(mencoder, "motion encoder"), _state_dict(netg, "generator")
    check_generator_fits(g_state, netg, level=level, vq=vq, vqvae=vqvae, code_len=code_len)
    gcfg = generator_config_from_state(m_state, g_state, level=level, dataset=dataset, code_len=code_len,
                                       emb_width=vq.config.emb_width, sources=(mencoder, netg))
    expected = PAPER_SHAPES[dataset]
    if (gcfg.motion_frames, gcfg.motion_dim) != (expected["motion_frames"], expected["motion_dim"]):
        raise UserError(f"motion encoder takes ({gcfg.motion_frames}, {gcfg.motion_dim}) motion, a {dataset} model "
                        f"takes ({expected['motion_frames']}, {expected['motion_dim']})", mencoder)
    try:
        G = D2MGenerator(gcfg)
    except ValueError as exc:
        raise UserError(f"generator sizes do not add up ({exc})", netg) from None
    if G.generator.fc is not None and "fc.weight" not in g_state:
        raise UserError(f"{netg} makes codes of length {G.generator.fc.in_features}, {vqvae} level {lvl} has "
                        f"{code_len} tokens per {segment_samples}-sample clip")
    _load(G.mencoder, m_state, mencoder, "motion encoder")
    _load(G.generator, g_state, netg, f"{level}-level generator")

    d_settings = {}
    if netd:
        d_settings = discriminator_settings(_state_dict(netd, "discriminator"), netd)
    overrides = {"level": level, "vqvae": str((out / "vqvae.pt").resolve()), "g_width": gcfg.width,
                 "motion_len": gcfg.motion_len, "motion_feat": gcfg.motion_feat, "genre_dim": gcfg.genre_dim,
                 "fused_len": gcfg.fused_len, "res_blocks": gcfg.res_blocks, **d_settings}
    cfg = resolve(D2MTrainConfig, overrides)
    torch.manual_seed(cfg.seed)
    D = build_discriminator(cfg)
    if netd:
        _load(D, _state_dict(netd, "discriminator"), netd, "discriminator")
    opt_g = _optimizer_state(optg, upstream_parameter_order(G), list(G.parameters()), "optG") if optg else None
    # The discriminator registers alike in both codes.
    opt_d = _optimizer_state(optd, list(D.parameters()), list(D.parameters()), "optD") if optd else None

    files = {"mencoder": mencoder, "netG": netg, "netD": netd, "optG": optg, "optD": optd, "vqvae": vqvae}
    imported = {k: ({"path": str(Path(v).resolve()), "sha256": sha256(v)} if v else None) for k, v in files.items()}
    imported["fresh"] = [k for k in ("netD", "optG", "optD") if not files[k]]
    out.mkdir(parents=True, exist_ok=True)
    import_vqvae(vqvae, out / "vqvae.pt", trust=trust)
    save_config(cfg, out / "config.json")
    atomic_save({"format": CKPT_FORMAT, "step": step, "epoch": 0, "batch_pos": 0, "config": asdict(cfg),
                 "generator_config": gcfg.to_dict(), "dataset": dataset, "vqvae": cfg.vqvae,
                 "generator": G.state_dict(), "discriminator": D.state_dict(), "optG": opt_g, "optD": opt_d,
                 "rng": None, "imported": imported}, out / "checkpoint.pt")
    return {"checkpoint": str(out / "checkpoint.pt"), "level": level, "dataset": dataset,
            "generator_parameters": sum(p.numel() for p in G.parameters()), "fresh": imported["fresh"]}
