"""Dilated 1-D residual stacks in the Jukebox VQ-VAE layout.

Module nesting follows openai/jukebox (jukebox/vqvae/resnet.py) so that parameter names of
the official checkpoints resolve here: a stack is ``model.<i>`` blocks, each block's
``model`` is (ReLU, conv k3 dilated, ReLU, conv k1), i.e. weights at ``model.1`` and
``model.3``.
"""
from __future__ import annotations

import math

from torch import nn


class ResConv1DBlock(nn.Module):
    """x + s * conv1x1(relu(conv3_dilated(relu(x)))) ; padding = dilation keeps the length."""

    def __init__(self, channels: int, hidden: int, *, dilation: int = 1, res_scale: float = 1.0):
        super().__init__()
        self.model = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(channels, hidden, 3, 1, dilation, dilation),
            nn.ReLU(),
            nn.Conv1d(hidden, channels, 1, 1, 0),
        )
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.res_scale * self.model(x)


class Resnet1D(nn.Module):
    """``depth`` residual blocks with dilations growth**0, growth**1, ...

    ``reverse_dilation`` orders them largest-first (Jukebox decoders do this by default,
    hparam ``vqvae_reverse_decoder_dilation=True``); it changes behaviour, not names.
    """

    def __init__(self, channels: int, depth: int, *, m_conv: float = 1.0, dilation_growth_rate: int = 1,
                 dilation_cycle: int | None = None, res_scale: bool = False, reverse_dilation: bool = False):
        super().__init__()
        blocks = []
        for d in range(depth):
            exponent = d if dilation_cycle is None else d % dilation_cycle
            blocks.append(ResConv1DBlock(channels, int(m_conv * channels),
                                         dilation=dilation_growth_rate ** exponent,
                                         res_scale=1.0 / math.sqrt(depth) if res_scale else 1.0))
        if reverse_dilation:
            blocks.reverse()
        self.model = nn.Sequential(*blocks)

    def forward(self, x):
        return self.model(x)
