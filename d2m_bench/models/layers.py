"""Small building blocks shared by the D2M-GAN generator and discriminator."""
from __future__ import annotations

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


def init_torch_zero_bias(module: nn.Module) -> None:
    """Opt-in generator init (``g_init = "torch-zero-bias"``): plain convs back to torch's default
    draw, every bias zero. The biases of the released init outweigh the narrow convs' signal, so a
    tiny generator's output barely depends on its input, and released settings did not train it to."""
    for m in module.modules():
        if isinstance(m, nn.Conv1d) and not is_parametrized(m):
            m.reset_parameters()
    for name, p in module.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(p)


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


def output_length(stack: nn.Sequential, length: int) -> int:
    """Output length of a Sequential of convs, reflection pads and length-preserving layers.

    Conv1d: floor((L + 2 p - d (k - 1) - 1) / s) + 1; ReflectionPad1d: L + left + right.
    Computed, not measured, so paper-size models need no dry run to size their time-axis Linears.
    """
    for layer in stack:
        if isinstance(layer, nn.Conv1d):
            (k,), (s,), (p,), (d,) = layer.kernel_size, layer.stride, layer.padding, layer.dilation
            length = (length + 2 * p - d * (k - 1) - 1) // s + 1
        elif isinstance(layer, nn.ReflectionPad1d):
            length += sum(layer.padding)
        elif not isinstance(layer, (ResnetBlock, nn.LeakyReLU, nn.ReLU, nn.Tanh)):
            raise TypeError(f"cannot infer the output length through {type(layer).__name__}")
    return length
