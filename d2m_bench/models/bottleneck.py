"""Vector-quantisation bottleneck with EMA codebook updates (Jukebox layout).

State-dict compatibility: openai/jukebox registers only the codebook ``k`` (k_bins x
emb_width) as a buffer; ``k_sum``, ``k_elem``, ``init`` and ``threshold`` are plain
attributes there, so official checkpoints hold ``bottleneck.level_blocks.<l>.k`` and nothing
else. Here ``k_sum``/``k_elem`` are *non-persistent* buffers (they follow ``.to(device)`` but
stay out of the state dict, so strict loading of official files works) and
:meth:`BottleneckBlock.ema_state` exports all EMA state for resuming VQ-VAE training.

Quantisation: index = argmin_j ||x - k_j||^2 (squared L2, expanded as |x|^2 - 2 x.k + |k|^2).
EMA update (van den Oord et al. 2017, appendix; Jukebox bottleneck.py):
k_sum <- mu k_sum + (1 - mu) sum_{x->j} x ; k_elem <- mu k_elem + (1 - mu) n_j ;
k_j = k_sum_j / k_elem_j where k_elem_j >= threshold, else a random current input (dead-code
revival).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


class BottleneckBlock(nn.Module):
    def __init__(self, k_bins: int, emb_width: int, mu: float = 0.99, threshold: float = 1.0):
        super().__init__()
        self.k_bins, self.emb_width, self.mu, self.threshold = k_bins, emb_width, mu, threshold
        self.register_buffer("k", torch.zeros(k_bins, emb_width))
        self.register_buffer("k_sum", torch.zeros(k_bins, emb_width), persistent=False)
        self.register_buffer("k_elem", torch.zeros(k_bins), persistent=False)
        self.init = False

    # -- EMA state (not part of the Jukebox state dict) ---------------------------------------
    def restore_k(self, num_tokens: float | None = None):
        """Mark a loaded codebook as initialised (Jukebox ``restore_k``): k_sum = k, k_elem = 1."""
        self.init = True
        self.k_sum.copy_(self.k)
        self.k_elem.fill_(1.0)
        if num_tokens is not None:
            usage = num_tokens / self.k_bins
            self.k_sum.mul_(usage)
            self.k_elem.mul_(usage)

    def ema_state(self) -> dict:
        return {"k_sum": self.k_sum.clone(), "k_elem": self.k_elem.clone(), "init": self.init,
                "threshold": self.threshold}

    def load_ema_state(self, state: dict) -> None:
        self.k_sum.copy_(state["k_sum"])
        self.k_elem.copy_(state["k_elem"])
        self.init = bool(state["init"])
        self.threshold = float(state["threshold"])

    # -- helpers ------------------------------------------------------------------------------
    def _tile(self, x):
        n, width = x.shape
        if n < self.k_bins:
            x = x.repeat((self.k_bins + n - 1) // n, 1)
            x = x + torch.randn_like(x) * (0.01 / np.sqrt(width))
        return x

    def _random_codes(self, x):
        y = self._tile(x)
        rand = y[torch.randperm(y.shape[0], device=y.device)][: self.k_bins].contiguous()
        if _distributed():
            dist.broadcast(rand, 0)
        return rand

    @staticmethod
    def flatten(x):
        """(N, C, T) -> (N*T, C), contiguous.

        For N = 1 a plain reshape of the permuted view is a transposed view, and the distance
        matmul then takes another BLAS path whose rounding differs from Jukebox's (which copies
        first); on a near-tie that flips a token, so the copy is part of being equal to upstream.
        """
        return x.permute(0, 2, 1).contiguous().view(-1, x.shape[1])

    def quantise(self, flat):
        """Nearest codebook rows of (M, C) features: (indices (M,), mean squared distance)."""
        kt = self.k.t()
        distance = (flat ** 2).sum(-1, keepdim=True) - 2 * flat @ kt + (kt ** 2).sum(0, keepdim=True)
        min_distance, idx = distance.min(dim=-1)
        return idx, min_distance.mean()

    def dequantise(self, idx):
        return F.embedding(idx, self.k)

    # -- public API -----------------------------------------------------------------------------
    def encode(self, x):
        """(N, C, T) features -> (N, T) code indices."""
        n, _, t = x.shape
        idx, _ = self.quantise(self.flatten(x))
        return idx.view(n, t)

    def decode(self, z):
        """(N, T) indices -> (N, C, T) codebook vectors."""
        n, t = z.shape
        return self.dequantise(z.reshape(-1)).view(n, t, self.emb_width).permute(0, 2, 1).contiguous()

    @torch.no_grad()
    def _init_k(self, flat):
        self.init = True
        self.k.copy_(self._random_codes(flat))
        self.k_sum.copy_(self.k)
        self.k_elem.fill_(1.0)

    @torch.no_grad()
    def _update_k(self, flat, idx):
        onehot = torch.zeros(self.k_bins, flat.shape[0], device=flat.device)
        onehot.scatter_(0, idx.view(1, -1), 1)
        batch_sum = onehot @ flat
        batch_elem = onehot.sum(-1)
        rand = self._random_codes(flat)
        if _distributed():
            dist.all_reduce(batch_sum)
            dist.all_reduce(batch_elem)
        old = self.k.clone()
        self.k_sum.mul_(self.mu).add_((1 - self.mu) * batch_sum)
        self.k_elem.mul_(self.mu).add_((1 - self.mu) * batch_elem)
        used = (self.k_elem >= self.threshold).float().view(-1, 1)
        self.k.copy_(used * (self.k_sum / self.k_elem.clamp_min(1e-12).view(-1, 1)) + (1 - used) * rand)
        prob = batch_elem / batch_elem.sum()
        return {"entropy": float(-(prob * torch.log(prob + 1e-8)).sum()),
                "usage": float(used.sum()),
                "dk": float(torch.linalg.norm(self.k - old) / np.sqrt(old.numel()))}

    def forward(self, x, update_k: bool = True):
        """Quantise with a straight-through estimator; returns (indices, x_q, commit loss, metrics).

        commit = ||sg(x_q) - x||^2 / numel (Jukebox's normalisation).
        """
        n, _, t = x.shape
        flat = self.flatten(x)
        if update_k and not self.init:
            self._init_k(flat.detach())
        idx, fit = self.quantise(flat)
        q = self.dequantise(idx)
        metrics = {"fit": float(fit.detach())}
        if update_k:
            metrics.update(self._update_k(flat.detach(), idx))
        commit = ((q.detach() - flat) ** 2).sum() / flat.numel()
        q = flat + (q - flat).detach()
        q = q.view(n, t, -1).permute(0, 2, 1).contiguous()
        return idx.view(n, t), q, commit, metrics


class Bottleneck(nn.Module):
    def __init__(self, l_bins: int, emb_width: int, mu: float, levels: int):
        super().__init__()
        self.levels = levels
        self.level_blocks = nn.ModuleList(BottleneckBlock(l_bins, emb_width, mu) for _ in range(levels))

    def encode(self, xs):
        return [block.encode(x) for block, x in zip(self.level_blocks, xs)]

    def decode(self, zs, start_level: int = 0, end_level: int | None = None):
        blocks = self.level_blocks[start_level:end_level]
        return [block.decode(z) for block, z in zip(blocks, zs)]

    def forward(self, xs):
        out = [block(x, update_k=self.training) for block, x in zip(self.level_blocks, xs)]
        zs, qs, commits, metrics = map(list, zip(*out))
        if not self.training:
            qs = [q.detach() for q in qs]
        return zs, qs, commits, metrics
