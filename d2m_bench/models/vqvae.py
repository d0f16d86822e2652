"""Jukebox-layout hierarchical VQ-VAE (Dhariwal et al. 2020, "Jukebox"), written for d2m-bench.

Parameter names and shapes match openai/jukebox ``VQVAE`` (``encoders.<l>...``,
``decoders.<l>...``, ``bottleneck.level_blocks.<l>.k``), so the official 5b ``vqvae.pth.tar``
and the D2M-GAN ``vqvae_high.pt`` / ``vqvae_low.pt`` files load by name (strict). With the
paper hyper-parameters (:func:`VQVAEConfig` defaults) a 44100-sample clip encodes to 5512 /
1378 / 344 tokens (hops 8 / 32 / 128) and each level decodes to ``tokens * hop`` samples
(44096 / 44096 / 44032).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from .bottleneck import Bottleneck
from .encdec import Decoder, Encoder
from .losses import multispectral_loss


@dataclass
class VQVAEConfig:
    """Hyper-parameters; defaults are Jukebox's ``vqvae`` hparam set (jukebox/hparams.py)."""

    levels: int = 3
    downs_t: tuple = (3, 2, 2)
    strides_t: tuple = (2, 2, 2)
    emb_width: int = 64
    l_bins: int = 2048
    l_mu: float = 0.99
    width: int = 32
    depth: int = 4
    m_conv: float = 1.0
    dilation_growth_rate: int = 3
    dilation_cycle: int | None = None
    multipliers: tuple = (2, 1, 1)
    reverse_decoder_dilation: bool = True
    channels: int = 1
    # training losses (Jukebox: commit 0.02, multispectral 1.0, lmix l2 1.0 + linf 0.02)
    commit: float = 0.02
    multispectral: float = 1.0
    recons_l1: float = 0.0
    recons_l2: float = 1.0
    recons_linf: float = 0.0  # Jukebox lmix_linf (0.02 in its vqvae hparams; the trainer's default)
    linf_k: int = 2048
    spec_n_fft: tuple = (2048, 1024, 512)
    spec_hop: tuple = (240, 120, 50)
    spec_win: tuple = (1200, 600, 240)

    @classmethod
    def from_dict(cls, d: dict) -> "VQVAEConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown VQ-VAE settings: {unknown}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def hop_lengths(self) -> list[int]:
        return [int(h) for h in np.cumprod([s ** d for s, d in zip(self.strides_t, self.downs_t)])]


class VQVAE(nn.Module):
    def __init__(self, config: VQVAEConfig | None = None):
        super().__init__()
        self.config = c = config or VQVAEConfig()
        self.levels = c.levels
        self.hop_lengths = c.hop_lengths

        def block_kwargs(level):
            return dict(width=c.width * c.multipliers[level], depth=c.depth * c.multipliers[level],
                        m_conv=c.m_conv, dilation_growth_rate=c.dilation_growth_rate,
                        dilation_cycle=c.dilation_cycle)

        self.encoders = nn.ModuleList(
            Encoder(c.channels, c.emb_width, level + 1, c.downs_t[:level + 1], c.strides_t[:level + 1],
                    **block_kwargs(level)) for level in range(c.levels))
        self.decoders = nn.ModuleList(
            Decoder(c.channels, c.emb_width, level + 1, c.downs_t[:level + 1], c.strides_t[:level + 1],
                    reverse_dilation=c.reverse_decoder_dilation, **block_kwargs(level)) for level in range(c.levels))
        self.bottleneck = Bottleneck(c.l_bins, c.emb_width, c.l_mu, c.levels)

    # Audio is (N, C, T) throughout (Jukebox's public API takes NTC; the transposes buy nothing here).
    def encode_continuous(self, x, levels=None):
        """Pre-quantisation features per level: list of (N, emb, T // hop)."""
        levels = range(self.levels) if levels is None else levels
        return [self.encoders[level](x)[-1] for level in levels]

    def encode(self, x, level: int):
        """(N, C, T) audio -> ((N, T // hop) indices, (N, emb, T // hop) continuous features)."""
        feats = self.encoders[level](x)[-1]
        return self.bottleneck.level_blocks[level].encode(feats), feats

    def dequantise(self, z, level: int):
        return self.bottleneck.level_blocks[level].decode(z)

    def decode_features(self, q, level: int):
        """(N, emb, T') codebook vectors of ``level`` -> (N, C, T' * hop) audio."""
        return self.decoders[level](q)

    def decode(self, z, level: int):
        return self.decode_features(self.dequantise(z, level), level)

    def lookup(self, x, level: int, *, straight_through: bool = False, grad_scale: float = 1.0):
        """Nearest-codebook vectors of generator features ``x`` (N, emb, T) at ``level``.

        Default: the lookup is a constant, as in the released D2M-GAN code (computed under
        no_grad, so losses on the decoded audio do not train the generator).
        ``straight_through``: forward value is the codebook vector, gradient passes to ``x``
        times ``grad_scale`` (x_s + sg(q - x_s) with x_s = s x + sg((1 - s) x)).
        """
        block = self.bottleneck.level_blocks[level]
        with torch.no_grad():
            q = block.decode(block.encode(x))
        if not straight_through:
            return q
        if grad_scale != 1.0:
            x = grad_scale * x + ((1.0 - grad_scale) * x).detach()
        return x + (q - x).detach()

    def forward(self, x, bandwidth: dict | None = None):
        """Training pass (Jukebox VQVAE.forward): returns (loss, metrics, per-level reconstructions).

        loss = sum_l [l1 * L1 + l2 * L2 + linf * Linf + multispectral * MS](x, x_hat_l) + commit * sum_l commit_l.
        With ``bandwidth`` ({"l1", "l2", "spec"} statistics of the training audio) this is Jukebox's
        loss: L1 / bw_l1, L2 and Linf / bw_l2, MS = per-example Frobenius STFT distance / bw_spec.
        Without it: unnormalised L1 / L2 / Linf and the scale-free RMS form of MS.
        """
        from .losses import linf_loss, multispectral_norm

        c = self.config
        xs = self.encode_continuous(x)
        zs, qs, commits, bn_metrics = self.bottleneck(xs)
        recons = [self.decoders[level](qs[level]) for level in range(self.levels)]
        recon_loss = x.new_zeros(())
        spec_loss = x.new_zeros(())
        metrics = {}
        bw = bandwidth or {"l1": 1.0, "l2": 1.0, "spec": 1.0}
        spec_kw = dict(n_ffts=c.spec_n_fft, hops=c.spec_hop, wins=c.spec_win)
        for level, x_hat in enumerate(recons):
            l1 = (x_hat - x).abs().mean()
            l2 = ((x_hat - x) ** 2).mean()
            if not c.multispectral:
                ms = x.new_zeros(())
            elif bandwidth:
                ms = multispectral_norm(x.squeeze(1), x_hat.squeeze(1), **spec_kw).mean() / bw["spec"]
            else:
                ms = multispectral_loss(x.squeeze(1), x_hat.squeeze(1), **spec_kw)
            linf = linf_loss(x_hat, x, c.linf_k) if c.recons_linf else x.new_zeros(())
            recon_loss = recon_loss + (c.recons_l1 * l1 / bw["l1"] + c.recons_l2 * l2 / bw["l2"]
                                       + c.recons_linf * linf / bw["l2"])
            spec_loss = spec_loss + ms
            metrics[f"l1_l{level + 1}"] = float(l1.detach())
            metrics[f"spec_l{level + 1}"] = float(ms.detach())
        commit = sum(commits)
        loss = recon_loss + c.multispectral * spec_loss + c.commit * commit
        metrics.update({k: float(v.detach()) for k, v in (("loss", loss), ("recons", recon_loss), ("spectral", spec_loss), ("commit", commit))})
        for level, m in enumerate(bn_metrics):
            for k, v in m.items():
                metrics[f"{k}_l{level + 1}"] = v
        return loss, metrics, recons

    # -- EMA state helpers for checkpoints ------------------------------------------------------
    def ema_state(self) -> list[dict]:
        return [b.ema_state() for b in self.bottleneck.level_blocks]

    def load_ema_state(self, states) -> None:
        for block, state in zip(self.bottleneck.level_blocks, states):
            block.load_ema_state(state)

    def restore_codebooks(self) -> None:
        for block in self.bottleneck.level_blocks:
            block.restore_k()


VQVAE_FORMAT = "d2m-bench-vqvae/1"
VQVAE_TRAIN_FORMAT = "d2m-bench-vqvae-train/1"  # training.train_vqvae.CKPT_FORMAT


def save_vqvae(model: VQVAE, path, extra: dict | None = None) -> None:
    from ..training.checkpoint import atomic_save

    atomic_save({"format": VQVAE_FORMAT, "config": model.config.to_dict(), "model": model.state_dict(),
                 "ema": model.ema_state(), **(extra or {})}, path)


def load_vqvae(path, *, config: VQVAEConfig | None = None, map_location="cpu", trust: bool = False) -> VQVAE:
    """Load a VQ-VAE: ours (``train vqvae``), a bare Jukebox-layout state dict (D2M-GAN
    ``vqvae_high.pt``), or a Jukebox ``{"model": state_dict, ...}`` file (``vqvae.pth.tar``;
    a DDP ``module.`` prefix is stripped). Strict: every name and shape must match.

    Files without our config use ``config`` (default: the Jukebox hparams). ``trust`` allows
    unpickling arbitrary objects (Jukebox files store their hparams object); only for files
    from a source you trust.
    """
    from ..errors import UserError
    from ..training.checkpoint import torch_load

    obj = torch_load(path, map_location=map_location, trust=trust)
    fmt = obj.get("format") if isinstance(obj, dict) else None
    ours = fmt in (VQVAE_FORMAT, VQVAE_TRAIN_FORMAT)
    if fmt == VQVAE_FORMAT:
        config = VQVAEConfig.from_dict(obj["config"])
        state = obj["model"]
    elif fmt == VQVAE_TRAIN_FORMAT:
        # `train vqvae`'s checkpoint.pt (an easy mistake for vqvae.pt) holds the same model.
        known = {f.name for f in fields(VQVAEConfig)}
        config = VQVAEConfig.from_dict({k: v for k, v in obj["config"].items() if k in known})
        state = obj["model"]
    elif isinstance(fmt, str) and fmt.startswith("d2m-bench-"):
        raise UserError(f"this is a {fmt} file, not a VQ-VAE; pass the vqvae.pt of a `train vqvae` run (or one "
                        "written by `import vqvae`)", path)
    else:
        state = obj["model"] if isinstance(obj, dict) and isinstance(obj.get("model"), dict) else obj
        if not isinstance(state, dict):
            raise UserError("not a VQ-VAE checkpoint (no state dict inside)", path)
        state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    model = VQVAE(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        hint = "" if ours else " (for a d2m-bench run pass its vqvae.pt; other files need the Jukebox `vqvae` hparams)"
        raise UserError(f"VQ-VAE weights do not fit the Jukebox layout ({' '.join(first)[:300]}){hint}", path) from None
    if ours and obj.get("ema"):
        model.load_ema_state(obj["ema"])
    else:
        model.restore_codebooks()
    return model


def frozen_vqvae(path, device, *, trust: bool = False) -> VQVAE:
    """:func:`load_vqvae` in eval mode on ``device`` with every parameter frozen (the D2M-GAN codec)."""
    from ..errors import UserError

    if not path:
        raise UserError("no VQ-VAE given: pass --vqvae PATH (from `d2m-bench train vqvae` or an official file)")
    vqvae = load_vqvae(path, trust=trust).to(device).eval()
    for p in vqvae.parameters():
        p.requires_grad_(False)
    return vqvae

