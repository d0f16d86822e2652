"""Small building blocks shared by the D2M-GAN generator and discriminator."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm
from torch.nn.utils.parametrize import is_parametrized


def wn_conv1d(*args, **kwargs):
    return weight_norm(nn.Conv1d(*args, **kwargs))


def init_plain_convs(module: nn.Module) -> None:
    """N(0, 0.02) for convs without weight norm (MelGAN / D2M-GAN ``weights_init``; there the
    re-draw also hits weight-normed convs but is overwritten by their g * v / |v| recompute)."""
    for m in module.modules():
        if isinstance(m, nn.Conv1d) and not is_parametrized(m):
            nn.init.normal_(m.weight, 0.0, 0.02)


class ResnetBlock(nn.Module):
    """MelGAN residual block: shortcut(x) + conv1(lrelu(conv3_d(pad_d(lrelu(x))))), weight-normed."""

    def __init__(self, dim: int, dilation: int = 1):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.ReflectionPad1d(dilation),
            wn_conv1d(dim, dim, kernel_size=3, dilation=dilation),
            nn.LeakyReLU(0.2),
            wn_conv1d(dim, dim, kernel_size=1),
        )
        self.shortcut = wn_conv1d(dim, dim, kernel_size=1)

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


def res_stack(dim: int, n: int) -> list[nn.Module]:
    """``n`` residual blocks with dilations 1, 3, 9, 27, ..."""
    return [ResnetBlock(dim, dilation=3 ** i) for i in range(n)]


def scaled(channels: int, width: float) -> int:
    """Hidden channel count under the width multiplier (at least 1)."""
    return max(1, int(round(channels * width)))


@torch.no_grad()
def output_length(module: nn.Module, channels: int, length: int) -> int:
    """Length of ``module``'s output for a (1, channels, length) input, by a dry run."""
    was_training = module.training
    module.eval()
    try:
        return int(module(torch.zeros(1, channels, length)).shape[-1])
    finally:
        module.train(was_training)
