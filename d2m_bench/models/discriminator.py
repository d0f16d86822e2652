"""MelGAN-style multi-scale discriminator on reshaped VQ codes (D2M-GAN).

The (B, emb, T) code tensor is flattened channel-major to (B, 1, emb * T). Each scale: reflect
pad 7 + WN conv 1 -> ndf (k16); n_layers grouped strided WN convs (k = 10 s + 1, stride s,
padding 5 s, groups = in / 4) with channels x s capped at ``cap``; WN conv k5 -> min(2 cap', 512 w);
WN conv k3 -> 1 score map. LeakyReLU(0.2) between. Scales see the input average-pooled
(k4, s2, p1, padding excluded) 0, 1, 2 times. With width 1 the channels are 32 -> 128 -> 512
-> 1024 -> 1024 -> 512 -> 1 as in the paper/code; module names mirror the released ``netD``
(``model.disc_<i>.model.layer_<k>``).
"""
from __future__ import annotations

from torch import nn

from .layers import init_plain_convs, scaled, wn_conv1d


class NLayerDiscriminator(nn.Module):
    def __init__(self, *, ndf: int = 32, n_layers: int = 4, stride: int = 4, cap: int = 1024, last: int = 512):
        super().__init__()
        model = nn.ModuleDict()
        model["layer_0"] = nn.Sequential(nn.ReflectionPad1d(7), wn_conv1d(1, ndf, kernel_size=16),
                                         nn.LeakyReLU(0.2))
        nf = ndf
        for n in range(1, n_layers + 1):
            nf_prev, nf = nf, min(nf * stride, cap)
            model[f"layer_{n}"] = nn.Sequential(
                wn_conv1d(nf_prev, nf, kernel_size=stride * 10 + 1, stride=stride, padding=stride * 5,
                          groups=max(1, nf_prev // 4)),
                nn.LeakyReLU(0.2))
        nf_out = min(nf * 2, last)
        model[f"layer_{n_layers + 1}"] = nn.Sequential(wn_conv1d(nf, nf_out, kernel_size=5, padding=2),
                                                       nn.LeakyReLU(0.2))
        model[f"layer_{n_layers + 2}"] = wn_conv1d(nf_out, 1, kernel_size=3, padding=1)
        self.model = model

    def forward(self, x):
        outputs = []
        for layer in self.model.values():
            x = layer(x)
            outputs.append(x)
        return outputs


class MultiScaleDiscriminator(nn.Module):
    """Returns, per scale, the list of layer outputs (the last one is the score map)."""

    def __init__(self, *, num_d: int = 3, ndf: int = 32, n_layers: int = 4, stride: int = 4, width: float = 1.0):
        super().__init__()
        self.model = nn.ModuleDict({
            f"disc_{i}": NLayerDiscriminator(ndf=scaled(ndf, width), n_layers=n_layers, stride=stride,
                                             cap=scaled(1024, width), last=scaled(512, width))
            for i in range(num_d)})
        self.downsample = nn.AvgPool1d(4, stride=2, padding=1, count_include_pad=False)
        init_plain_convs(self)

    def forward(self, codes):
        x = codes.reshape(codes.shape[0], 1, -1)
        results = []
        for disc in self.model.values():
            results.append(disc(x))
            x = self.downsample(x)
        return results
