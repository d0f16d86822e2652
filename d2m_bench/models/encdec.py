"""Jukebox-layout multi-level audio encoder and decoder.

Per level ``l`` an :class:`Encoder` stacks ``l + 1`` :class:`EncoderConvBlock` s (so level 2
re-runs levels 0 and 1 with its own weights, as Jukebox does). Each down-sampling step is a
strided conv (kernel 2*stride, padding stride//2: for stride 2 that is k4 s2 p1, which maps
length L to floor(L/2)) followed by a dilated residual stack; each block ends with a k3 conv to
the embedding width. Decoders mirror this with transposed convs (length x2 per step) and a
final ``out`` conv to the audio channels.
"""
from __future__ import annotations

from torch import nn

from .resnet import Resnet1D


class EncoderConvBlock(nn.Module):
    def __init__(self, in_channels, emb_width, down_t, stride_t, *, width, depth, m_conv=1.0,
                 dilation_growth_rate=1, dilation_cycle=None, res_scale=False):
        super().__init__()
        kernel, pad = stride_t * 2, stride_t // 2
        blocks = []
        for i in range(down_t):
            blocks.append(nn.Sequential(
                nn.Conv1d(in_channels if i == 0 else width, width, kernel, stride_t, pad),
                Resnet1D(width, depth, m_conv=m_conv, dilation_growth_rate=dilation_growth_rate,
                         dilation_cycle=dilation_cycle, res_scale=res_scale),
            ))
        blocks.append(nn.Conv1d(width, emb_width, 3, 1, 1))
        self.model = nn.Sequential(*blocks)

    def forward(self, x):
        return self.model(x)


class DecoderConvBlock(nn.Module):
    def __init__(self, out_channels, emb_width, down_t, stride_t, *, width, depth, m_conv=1.0,
                 dilation_growth_rate=1, dilation_cycle=None, res_scale=False, reverse_dilation=True):
        super().__init__()
        kernel, pad = stride_t * 2, stride_t // 2
        blocks = [nn.Conv1d(emb_width, width, 3, 1, 1)]
        for i in range(down_t):
            blocks.append(nn.Sequential(
                Resnet1D(width, depth, m_conv=m_conv, dilation_growth_rate=dilation_growth_rate,
                         dilation_cycle=dilation_cycle, res_scale=res_scale, reverse_dilation=reverse_dilation),
                nn.ConvTranspose1d(width, out_channels if i == down_t - 1 else width, kernel, stride_t, pad),
            ))
        self.model = nn.Sequential(*blocks)

    def forward(self, x):
        return self.model(x)


class Encoder(nn.Module):
    """Audio (N, C, T) -> list of per-level features; the last is (N, emb, T / hop)."""

    def __init__(self, in_channels, emb_width, levels, downs_t, strides_t, **block_kwargs):
        super().__init__()
        block_kwargs.pop("reverse_dilation", None)
        self.level_blocks = nn.ModuleList(
            EncoderConvBlock(in_channels if level == 0 else emb_width, emb_width, down_t, stride_t, **block_kwargs)
            for level, down_t, stride_t in zip(range(levels), downs_t, strides_t))

    def forward(self, x):
        xs = []
        for block in self.level_blocks:
            x = block(x)
            xs.append(x)
        return xs


class Decoder(nn.Module):
    """Code features (N, emb, T / hop) of this decoder's own level -> audio (N, C, T)."""

    def __init__(self, out_channels, emb_width, levels, downs_t, strides_t, **block_kwargs):
        super().__init__()
        # Every level block maps emb -> emb; only the final `out` conv returns to audio channels.
        self.level_blocks = nn.ModuleList(
            DecoderConvBlock(emb_width, emb_width, down_t, stride_t, **block_kwargs)
            for _, down_t, stride_t in zip(range(levels), downs_t, strides_t))
        self.out = nn.Conv1d(emb_width, out_channels, 3, 1, 1)

    def forward(self, x):
        for block in reversed(self.level_blocks):
            x = block(x)
        return self.out(x)
