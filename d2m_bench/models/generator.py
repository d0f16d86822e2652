"""D2M-GAN generator: motion encoder + fusion + VQ code generator (Zhu et al. 2022).

Shapes with the paper size (width 1) on AIST++ (motion (120, 219), visual 2048, 10 genres):

* MotionEncoder: per-frame Linear 219 -> 800; frames are conv channels: conv 120 -> 256 (k6),
  ReLU, 4 residual blocks (dilation 1, 3, 9, 27); LReLU conv 256 -> 512 (k4) + 4 blocks;
  LReLU conv 512 -> 1024 (k4) + 4 blocks; LReLU conv 1024 -> 1 (k4) -> (B, 1, 786);
  Linear 786 -> 1024. (TikTok: Linear 75 -> 800, conv 60 -> 256.)
* Fusion: cat(motion 1024, visual 2048, Embedding(10, 256)[genre]) = 3328 (no genre: 3072).
* High generator (level 2, 344 x 64): Linear -> 2058, conv 1 -> 32 (k6 s2 p1) + 4 blocks, LReLU conv
  32 -> 64 (k41 s2 p1) + 4, then 64 -> 128 -> 256 -> 512 (k41 p1) + 4 each, LReLU conv 512 -> 64
  (k40 p1), tanh, x sigma (100).
* Low generator (level 1, 1378 x 64): Linear -> 2048, reflect-padded convs 1 -> 32 (k6 s2) -> 64 (k4)
  -> 128 (k40 s2) -> 256 -> 512 -> 1024 (k40) with 4 blocks each, 1024 -> 1024 (k40), 1024 -> 64 (k40),
  tanh, then a time-axis Linear (1045 -> 1378) and x sigma (the linear follows tanh, as released,
  so low codes are not bounded by sigma).

Deviation (fix): every time-axis Linear takes its input length from the conv stack's arithmetic
instead of a hard-coded number. The released TikTok-low model feeds the 3072-d fusion without the
input Linear, its stack then yields 1301 steps and Linear(1045, 1378) fails; here it gets
Linear(1301, 1378) and runs. If a stack's output length differs from the code length (only
possible with non-paper ``fused_len``), a Linear to the code length is appended (``fc``).
Module names mirror the released ``mencoder`` / ``netG`` (``lin1``, ``model.<i>``, ``lin2``,
``lin``, ``genre_embed``, ``fc``); weight-normed convs use torch's parametrization names.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from .layers import init_plain_convs, output_length, res_stack, scaled


@dataclass
class GeneratorConfig:
    level: str = "high"  # "high" = VQ-VAE level 2, "low" = level 1
    width: float = 1.0  # multiplier on every hidden channel count (1 = paper)
    motion_frames: int = 120
    motion_dim: int = 219
    motion_len: int = 800  # per-frame Linear output (the conv "length" axis)
    motion_feat: int = 1024
    visual_dim: int = 2048
    n_genres: int = 10
    genre_dim: int = 256  # 0: no genre input (TikTok)
    fused_len: int = -1  # input Linear output; -1: paper value (2058 high, 2048 low; TikTok low: none), 0: none
    res_blocks: int = 4
    emb_width: int = 64
    code_len: int = 344  # VQ-VAE tokens per clip at the level
    sigma: float = 100.0

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved_fused_len(self) -> int:
        if self.fused_len >= 0:
            return self.fused_len
        if self.level == "high":
            return 2058
        # Released TikTok-low skips the input Linear (d2m_modules_tiktok.py); AIST++-low has 2048.
        return 2048 if self.genre_dim else 0


class MotionEncoder(nn.Module):
    def __init__(self, c: GeneratorConfig):
        super().__init__()
        w, n = c.width, c.res_blocks
        c1, c2, c3 = scaled(256, w), scaled(512, w), scaled(1024, w)
        self.lin1 = nn.Linear(c.motion_dim, c.motion_len)
        self.model = nn.Sequential(
            nn.Conv1d(c.motion_frames, c1, kernel_size=6), nn.ReLU(), *res_stack(c1, n),
            nn.LeakyReLU(0.2), nn.Conv1d(c1, c2, kernel_size=4), *res_stack(c2, n),
            nn.LeakyReLU(0.2), nn.Conv1d(c2, c3, kernel_size=4), *res_stack(c3, n),
            nn.LeakyReLU(0.2), nn.Conv1d(c3, 1, kernel_size=4),
        )
        self.lin2 = nn.Linear(output_length(self.model, c.motion_len), c.motion_feat)
        init_plain_convs(self)

    def forward(self, motion):
        """(B, frames, dim) -> (B, 1, motion_feat)."""
        return self.lin2(self.model(self.lin1(motion)))


def _high_stack(c: GeneratorConfig) -> list[nn.Module]:
    w, n = c.width, c.res_blocks
    ch = [scaled(x, w) for x in (32, 64, 128, 256, 512)]
    layers = [nn.Conv1d(1, ch[0], kernel_size=6, stride=2, padding=1), *res_stack(ch[0], n),
              nn.LeakyReLU(0.2), nn.Conv1d(ch[0], ch[1], kernel_size=41, stride=2, padding=1), *res_stack(ch[1], n)]
    for a, b in zip(ch[1:-1], ch[2:]):
        layers += [nn.LeakyReLU(0.2), nn.Conv1d(a, b, kernel_size=41, stride=1, padding=1), *res_stack(b, n)]
    layers += [nn.LeakyReLU(0.2), nn.Conv1d(ch[-1], c.emb_width, kernel_size=40, stride=1, padding=1), nn.Tanh()]
    return layers


def _low_stack(c: GeneratorConfig) -> list[nn.Module]:
    w, n = c.width, c.res_blocks
    ch = [scaled(x, w) for x in (32, 64, 128, 256, 512, 1024)]
    layers = [nn.ReflectionPad1d(3), nn.Conv1d(1, ch[0], kernel_size=6, stride=2, padding=1), *res_stack(ch[0], n),
              nn.LeakyReLU(0.2), nn.ReflectionPad1d(32), nn.Conv1d(ch[0], ch[1], kernel_size=4, stride=1, padding=1),
              *res_stack(ch[1], n),
              nn.LeakyReLU(0.2), nn.ReflectionPad1d(64), nn.Conv1d(ch[1], ch[2], kernel_size=40, stride=2, padding=1),
              *res_stack(ch[2], n)]
    for a, b in zip(ch[2:-1], ch[3:]):
        layers += [nn.LeakyReLU(0.2), nn.ReflectionPad1d(64), nn.Conv1d(a, b, kernel_size=40, stride=1, padding=1),
                   *res_stack(b, n)]
    layers += [nn.LeakyReLU(0.2), nn.ReflectionPad1d(64), nn.Conv1d(ch[-1], ch[-1], kernel_size=40, padding=1),
               nn.ReflectionPad1d(64), nn.Conv1d(ch[-1], c.emb_width, kernel_size=40, padding=1), nn.Tanh()]
    return layers


class VQGenerator(nn.Module):
    """Fused (B, 1, motion_feat + visual_dim) + genre -> codes (B, emb_width, code_len), scaled by sigma."""

    def __init__(self, c: GeneratorConfig):
        super().__init__()
        self.config = c
        fused_in = c.motion_feat + c.visual_dim + c.genre_dim
        fused_len = c.resolved_fused_len()
        self.lin = nn.Linear(fused_in, fused_len) if fused_len else None
        self.genre_embed = nn.Embedding(c.n_genres, c.genre_dim) if c.genre_dim else None
        self.model = nn.Sequential(*(_high_stack(c) if c.level == "high" else _low_stack(c)))
        produced = output_length(self.model, fused_len or fused_in)
        if produced <= 0:
            raise ValueError(f"generator conv stack leaves no output for input length {fused_len or fused_in}")
        self.fc = nn.Linear(produced, c.code_len) if (c.level == "low" or produced != c.code_len) else None
        init_plain_convs(self)

    def forward(self, fused, genre=None):
        c = self.config
        if self.genre_embed is not None:
            if genre is None:
                raise ValueError("this generator needs genre indices")
            fused = torch.cat([fused, self.genre_embed(genre).unsqueeze(1)], dim=2)
        x = self.lin(fused) if self.lin is not None else fused
        out = self.model(x)
        if self.fc is not None:
            out = self.fc(out)
        return out * c.sigma


class D2MGenerator(nn.Module):
    """Motion encoder + code generator trained jointly (one optimiser, as released)."""

    def __init__(self, c: GeneratorConfig):
        super().__init__()
        self.config = c
        self.mencoder = MotionEncoder(c)
        self.generator = VQGenerator(c)

    def forward(self, motion, visual, genre=None):
        """motion (B, F, D), visual (B, 1, visual_dim), genre (B,) long -> (B, emb_width, code_len)."""
        fused = torch.cat([self.mencoder(motion), visual], dim=2)
        return self.generator(fused, genre)
