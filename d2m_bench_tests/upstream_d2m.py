"""Judges written from the upstream D2M-GAN code (L-YeZhu/D2M-GAN @5dc5bbf, d2m/d2m_modules.py,
d2m_aist.py, generate_aist.py) and from Jukebox's bottleneck (openai/jukebox, jukebox/vqvae/bottleneck.py).

What is literal: the module classes and the order in which they register their submodules
(that order is what an optimiser state is keyed by), legacy ``torch.nn.utils.weight_norm``
(``weight_g`` / ``weight_v``, what torch 1.7 saved), ``weights_init``, the one-hot genre input,
the training step's arithmetic and the save step's five ``state_dict()`` files.

What is not: ``div`` divides every hidden channel count (1 = upstream's paper size) so that
tests run in seconds on a CPU; lengths (800, 786, 2058, 2048, 1045, 1378) are upstream's at
any ``div``. The VQ-VAE's convolutions are d2m-bench's (their layout is checked against
Jukebox's name/shape table in test_train_vqvae.py); its quantiser is the Jukebox port below.
The training step leaves out the wav / mel terms: upstream computes them from a lookup under
``no_grad``, so they are constants to the optimiser and change no parameter.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn


def _legacy_weight_norm(module):
    with warnings.catch_warnings():  # torch marks the old API deprecated; upstream used it
        warnings.simplefilter("ignore")
        return torch.nn.utils.weight_norm(module)


def WNConv1d(*args, **kwargs):
    return _legacy_weight_norm(nn.Conv1d(*args, **kwargs))


def weights_init(m):
    # Upstream matches on the class name, so weight-normed convs are redrawn too (their weight is
    # recomputed from g and v before use); the draw still consumes the RNG as upstream's does.
    if m.__class__.__name__.find("Conv") != -1:
        m.weight.data.normal_(0.0, 0.02)
    elif m.__class__.__name__.find("BatchNorm2d") != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


class ResnetBlock(nn.Module):
    def __init__(self, dim, dilation=1):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(0.2), nn.ReflectionPad1d(dilation), WNConv1d(dim, dim, kernel_size=3, dilation=dilation),
            nn.LeakyReLU(0.2), WNConv1d(dim, dim, kernel_size=1))
        self.shortcut = WNConv1d(dim, dim, kernel_size=1)

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


def _blocks(dim):
    return [ResnetBlock(dim, dilation=3 ** i) for i in range(4)]


class motion_encoder(nn.Module):  # noqa: N801 (upstream's name)
    def __init__(self, div=1, frames=120, dim=219):
        super().__init__()
        c1, c2, c3 = 256 // div, 512 // div, 1024 // div
        # Registration order lin1, lin2, model: upstream's, and not d2m-bench's.
        self.lin1 = nn.Linear(dim, 800)
        self.lin2 = nn.Linear(786, 1024)
        model = [nn.Conv1d(frames, c1, kernel_size=6), nn.ReLU(), *_blocks(c1),
                 nn.LeakyReLU(0.2), nn.Conv1d(c1, c2, kernel_size=4), *_blocks(c2),
                 nn.LeakyReLU(0.2), nn.Conv1d(c2, c3, kernel_size=4), *_blocks(c3),
                 nn.LeakyReLU(0.2), nn.Conv1d(c3, 1, kernel_size=4)]
        self.model = nn.Sequential(*model)
        self.apply(weights_init)

    def forward(self, x):
        return self.lin2(self.model(self.lin1(x)))


def _genre_cat(embed, x, genre):
    # Upstream takes a one-hot genre row per clip and recovers the index with nonzero().
    genre_idx = genre.nonzero(as_tuple=True)[1]
    return torch.cat((x, embed(genre_idx).unsqueeze(1)), 2)


class vqEncoder_high(nn.Module):  # noqa: N801
    def __init__(self, div=1):
        super().__init__()
        ch = [c // div for c in (32, 64, 128, 256, 512)]
        self.lin = nn.Linear(1024 + 2048 + 256, 2058)
        self.genre_embed = nn.Embedding(10, 256)
        model = [nn.Conv1d(1, ch[0], kernel_size=6, stride=2, padding=1), *_blocks(ch[0]),
                 nn.LeakyReLU(0.2), nn.Conv1d(ch[0], ch[1], kernel_size=41, stride=2, padding=1), *_blocks(ch[1])]
        for a, b in zip(ch[1:-1], ch[2:]):
            model += [nn.LeakyReLU(0.2), nn.Conv1d(a, b, kernel_size=41, stride=1, padding=1), *_blocks(b)]
        model += [nn.LeakyReLU(0.2), nn.Conv1d(ch[-1], 64, kernel_size=40, stride=1, padding=1), nn.Tanh()]
        self.model = nn.Sequential(*model)
        self.apply(weights_init)

    def forward(self, x, genre, batch_size):
        x = self.lin(_genre_cat(self.genre_embed, x.float(), genre))
        return self.model(x) * 100


class vqEncoder_low(nn.Module):  # noqa: N801
    def __init__(self, div=1):
        super().__init__()
        ch = [c // div for c in (32, 64, 128, 256, 512, 1024)]
        # Registration order lin, fc, genre_embed, model: upstream's, and not d2m-bench's.
        self.lin = nn.Linear(1024 + 2048 + 256, 2048)
        self.fc = nn.Linear(1045, 1378)
        self.genre_embed = nn.Embedding(10, 256)
        model = [nn.ReflectionPad1d(3), nn.Conv1d(1, ch[0], kernel_size=6, stride=2, padding=1), *_blocks(ch[0]),
                 nn.LeakyReLU(0.2), nn.ReflectionPad1d(32), nn.Conv1d(ch[0], ch[1], kernel_size=4, stride=1, padding=1),
                 *_blocks(ch[1]),
                 nn.LeakyReLU(0.2), nn.ReflectionPad1d(64), nn.Conv1d(ch[1], ch[2], kernel_size=40, stride=2, padding=1),
                 *_blocks(ch[2])]
        for a, b in zip(ch[2:-1], ch[3:]):
            model += [nn.LeakyReLU(0.2), nn.ReflectionPad1d(64), nn.Conv1d(a, b, kernel_size=40, stride=1, padding=1),
                      *_blocks(b)]
        model += [nn.LeakyReLU(0.2), nn.ReflectionPad1d(64), nn.Conv1d(ch[-1], ch[-1], kernel_size=40, stride=1, padding=1),
                  nn.ReflectionPad1d(64), nn.Conv1d(ch[-1], 64, kernel_size=40, stride=1, padding=1), nn.Tanh()]
        self.model = nn.Sequential(*model)
        self.apply(weights_init)

    def forward(self, x, genre, batch_size):
        x = self.lin(_genre_cat(self.genre_embed, x.float(), genre))
        return 100 * self.fc(self.model(x))


class NLayerDiscriminator(nn.Module):
    def __init__(self, ndf, n_layers, downsampling_factor, div=1):
        super().__init__()
        model = nn.ModuleDict()
        model["layer_0"] = nn.Sequential(nn.ReflectionPad1d(7), WNConv1d(1, ndf, kernel_size=16),
                                         nn.LeakyReLU(0.2, True))
        nf, stride = ndf, downsampling_factor
        for n in range(1, n_layers + 1):
            nf_prev = nf
            nf = min(nf * stride, 1024 // div)
            model["layer_%d" % n] = nn.Sequential(
                WNConv1d(nf_prev, nf, kernel_size=stride * 10 + 1, stride=stride, padding=stride * 5,
                         groups=nf_prev // 4),
                nn.LeakyReLU(0.2, True))
        nf = min(nf * 2, 512 // div)
        # Upstream feeds this conv nf_prev channels: equal to nf at every size used here.
        model["layer_%d" % (n_layers + 1)] = nn.Sequential(WNConv1d(nf_prev, nf, kernel_size=5, stride=1, padding=2),
                                                           nn.LeakyReLU(0.2, True))
        model["layer_%d" % (n_layers + 2)] = WNConv1d(nf, 1, kernel_size=3, stride=1, padding=1)
        self.model = model

    def forward(self, x):
        results = []
        for _, layer in self.model.items():
            x = layer(x)
            results.append(x)
        return results


class Discriminator(nn.Module):
    def __init__(self, num_D=3, ndf=32, n_layers=4, downsampling_factor=4, div=1):  # noqa: N803
        super().__init__()
        self.model = nn.ModuleDict()
        for i in range(num_D):
            self.model[f"disc_{i}"] = NLayerDiscriminator(ndf // div, n_layers, downsampling_factor, div)
        self.downsample = nn.AvgPool1d(4, stride=2, padding=1, count_include_pad=False)
        self.apply(weights_init)

    def forward(self, x, genre):
        results = []
        for _, disc in self.model.items():
            results.append(disc(x))
            x = self.downsample(x)
        return results


# -- Jukebox bottleneck (encode / decode path of BottleneckBlock) ----------------------------------

class JukeboxBottleneckBlock:
    """The quantiser of jukebox/vqvae/bottleneck.py: NCT -> NTC, .contiguous(), view (N*T, C),
    squared distance |x|^2 - 2 x.k + |k|^2, argmin; decode = embedding lookup, back to NCT."""

    def __init__(self, k):
        self.k = k

    def preprocess(self, x):
        x = x.permute(0, 2, 1).contiguous()
        return x.view(-1, x.shape[-1])

    def quantise(self, x):
        k_w = self.k.t()
        distance = (torch.sum(x ** 2, dim=-1, keepdim=True) - 2 * torch.matmul(x, k_w)
                    + torch.sum(k_w ** 2, dim=0, keepdim=True))
        min_distance, x_l = torch.min(distance, dim=-1)
        return x_l, torch.mean(min_distance)

    def encode(self, x):
        n, _, t = x.shape
        x_l, _ = self.quantise(self.preprocess(x))
        return x_l.view(n, t)

    def decode(self, x_l):
        n, t = x_l.shape
        return F.embedding(x_l, self.k).view(n, t, self.k.shape[1]).permute(0, 2, 1).contiguous()


# -- the released scripts' steps ---------------------------------------------------------------------

LEVEL = {"high": 2, "low": 1}


def build(level, div, *, d_div=8, seed=0, num_D=3):  # noqa: N803
    """mencoder, encoder (netG), netD, optG, optD as d2m_aist.py creates them. The discriminator
    has its own divisor: upstream's grouped convs need at least 4 channels (groups = in // 4)."""
    torch.manual_seed(seed)
    encoder = (vqEncoder_high if level == "high" else vqEncoder_low)(div)
    mencoder = motion_encoder(div)
    netD = Discriminator(num_D, 32, 4, 4, div=d_div)
    optG = torch.optim.Adam(list(mencoder.parameters()) + list(encoder.parameters()), lr=1e-4, betas=(0.5, 0.9))
    optD = torch.optim.Adam(netD.parameters(), lr=1e-4, betas=(0.5, 0.9))
    return {"mencoder": mencoder, "netG": encoder, "netD": netD, "optG": optG, "optD": optD, "level": level}


def one_hot(genre, n=10):
    return F.one_hot(genre.view(-1), n).float()


def train_step(m, vqvae, batch, n_layers_D=4, num_D=3):  # noqa: N803
    """One iteration of d2m_aist.py's loop on ``batch`` (d2m-bench's batch dict), in its order:
    D on fake (detached) and real, D step, then G on adversarial + 3 FM + 5 cont + 8 code."""
    level = LEVEL[m["level"]]
    a_t, v_t, m_t, genre = batch["audio"], batch["visual"], batch["motion"], one_hot(batch["genre"])
    batch_size = a_t.shape[0]
    mencoder, encoder, netD, optG, optD = (m[k] for k in ("mencoder", "netG", "netD", "optG", "optD"))
    xs_pred = encoder(torch.cat((mencoder(m_t), v_t), 2), genre, batch_size)
    with torch.no_grad():
        xs_t = vqvae.encoders[level](a_t)[-1]
        block = JukeboxBottleneckBlock(vqvae.bottleneck.level_blocks[level].k)
        xs_quantised_gt = block.decode(block.encode(xs_t))
    xs_error = F.l1_loss(xs_t.view(batch_size, 1, -1), xs_pred.view(batch_size, 1, -1))
    code_error = F.l1_loss(xs_quantised_gt.view(batch_size, 1, -1), xs_pred.view(batch_size, 1, -1))
    xs_pred = xs_pred.view(batch_size, 1, -1)
    D_fake_det = netD(xs_pred.detach(), genre)
    D_real = netD(xs_t.view(batch_size, 1, -1), genre)
    loss_D = 0
    for scale in D_fake_det:
        loss_D += F.relu(1 + scale[-1]).mean()
    for scale in D_real:
        loss_D += F.relu(1 - scale[-1]).mean()
    netD.zero_grad()
    loss_D.backward()
    optD.step()
    D_fake = netD(xs_pred, genre)
    loss_G = 0
    for scale in D_fake:
        loss_G += -scale[-1].mean()
    loss_feat = 0
    wt = (1.0 / num_D) * (4.0 / (n_layers_D + 1))
    for i in range(num_D):
        for j in range(len(D_fake[i]) - 1):
            loss_feat += wt * F.l1_loss(D_fake[i][j], D_real[i][j].detach())
    mencoder.zero_grad()
    encoder.zero_grad()
    (loss_G + 3 * loss_feat + 5 * xs_error + 8 * code_error).backward()
    optG.step()
    return {k: float(v.detach()) for k, v in (("loss_d", loss_D), ("adv", loss_G), ("fm", loss_feat),
                                              ("code_cont", xs_error), ("code_quant", code_error))}


def save(m, folder):
    """d2m_aist.py's save step: five bare state_dict() files."""
    for name in ("mencoder", "netG", "optG", "netD", "optD"):
        torch.save(m[name].state_dict(), folder / f"{name}.pt")


def load(level, div, folder, *, d_div=8):
    """The five files back into freshly built models and optimisers (legacy weight norm cannot be deep-copied)."""
    m = build(level, div, d_div=d_div)
    for name in ("mencoder", "netG", "optG", "netD", "optD"):
        m[name].load_state_dict(torch.load(folder / f"{name}.pt", weights_only=True))
    return m


@torch.no_grad()
def generate_clip(m, vqvae, item):
    """generate_aist.py for one test clip: (codes, token indices, waveform before denoising)."""
    level = LEVEL[m["level"]]
    m["mencoder"].eval()
    m["netG"].eval()
    pred_xs = m["netG"](torch.cat((m["mencoder"](item["motion"][None]), item["visual"][None]), 2),
                        one_hot(item["genre"]), 1)
    block = JukeboxBottleneckBlock(vqvae.bottleneck.level_blocks[level].k)
    z = block.encode(pred_xs)
    return pred_xs, z, vqvae.decoders[level](block.decode(z)).reshape(-1).numpy()


def upstream_names(state: dict) -> dict:
    """Legacy weight-norm names -> torch's parametrization names (to compare with d2m-bench's models)."""
    out = {}
    for k, v in state.items():
        for old, new in ((".weight_g", ".parametrizations.weight.original0"),
                         (".weight_v", ".parametrizations.weight.original1")):
            if k.endswith(old):
                k = k[: -len(old)] + new
        out[k] = v
    return out


def near_tie_codes(k, n_rows, *, seed=0):
    """(1, C, n_rows) features each half-way between two codebook rows, nudged by ~1e-8 of their
    size towards one: the two nearest distances differ by < 1e-7 relative, so the argmin depends
    on the last bits of the distance matmul."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, k.shape[0], (n_rows,), generator=g)
    b = (a + 1 + torch.randint(0, k.shape[0] - 1, (n_rows,), generator=g)) % k.shape[0]
    t = 0.5 + (torch.rand(n_rows, 1, generator=g) - 0.5) * 1e-7
    x = (k[a] * t + k[b] * (1 - t)).float()
    return x.t().unsqueeze(0).contiguous(), a, b


def relative_gap(x, k):
    """Per row of (1, C, T) features: (second nearest - nearest) / nearest squared distance (float64)."""
    d = torch.cdist(x[0].t().double(), k.double()) ** 2
    two = d.topk(2, largest=False).values
    return (two[:, 1] - two[:, 0]) / two[:, 0]

