"""PyTorch view of a built dataset (d2m_bench.data.dataset) for D2M-GAN and VQ-VAE training.

Audio handling follows the released loader (d2m/dataset.py): mono at the dataset rate, peak
normalised to 0.95, random crop when longer than the target length and zero padding when
shorter; ``augment`` multiplies by a gain drawn from U(gain_min, gain_max). Randomness is drawn
from a generator seeded by (seed, epoch, index), so batches are reproducible across workers,
processes and resumed runs. Test splits must be built with ``augment=False`` (the trainer does).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..io.audio import load_audio, peak_normalise
from ..data.dataset import Dataset
from ..errors import UserError


class ClipDataset(torch.utils.data.Dataset):
    def __init__(self, root, split: str, *, augment: bool = False, seed: int = 0, gain=(0.3, 1.0),
                 length: int | None = None, audio_only: bool = False, limit: int | None = None):
        self.dataset = Dataset(root)
        self.info = self.dataset.info
        self.segments = self.dataset.segments(split)[:limit]
        self.split, self.augment, self.seed, self.gain = split, augment, seed, gain
        self.sr = int(self.info.sample_rate)
        self.length = length or int(round(self.info.segment_seconds * self.sr))
        self.audio_only = audio_only
        self.epoch = 0
        self.has_genre = all(s.genre_index is not None for s in self.segments)
        if not audio_only:
            for col in ("motion", "visual"):
                missing = [s.segment_id for s in self.segments if not getattr(s, col)]
                if missing:
                    raise UserError(f"split '{split}' has no {col} for {len(missing)} segment(s), e.g. {missing[0]}",
                                    self.dataset.root)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return len(self.segments)

    def _rng(self, index):
        return np.random.default_rng([self.seed, self.epoch, index])

    def audio(self, index, rng=None) -> np.ndarray:
        seg = self.segments[index]
        y, _ = load_audio(self.dataset.path(seg.audio), self.sr)
        y = peak_normalise(y, 0.95)
        n = self.length
        if len(y) > n:
            start = int(rng.integers(0, len(y) - n + 1)) if (self.augment and rng is not None) else 0
            y = y[start:start + n]
        elif len(y) < n:
            y = np.pad(y, (0, n - len(y)))
        if self.augment and rng is not None:
            y = y * np.float32(rng.uniform(*self.gain))
        return y.astype(np.float32)

    def __getitem__(self, index):
        seg = self.segments[index]
        rng = self._rng(index)
        item = {"index": index, "audio": torch.from_numpy(self.audio(index, rng)).unsqueeze(0)}
        if self.audio_only:
            return item
        motion = np.load(self.dataset.path(seg.motion)).astype(np.float32)
        if motion.ndim != 2:
            motion = motion.reshape(motion.shape[0], -1)  # e.g. TikTok (frames, 25, 3) -> (frames, 75)
        visual = np.load(self.dataset.path(seg.visual)).astype(np.float32).reshape(1, -1)
        item.update(motion=torch.from_numpy(motion), visual=torch.from_numpy(visual),
                    genre=torch.tensor(seg.genre_index if seg.genre_index is not None else -1))
        return item

    def ids(self, indices) -> list[str]:
        return [self.segments[int(i)].segment_id for i in indices]


def epoch_batches(n: int, batch_size: int, *, seed: int, epoch: int, rank: int = 0, world: int = 1,
                  shuffle: bool = True, drop_last: bool = True) -> list[list[int]]:
    """This rank's batches for ``epoch`` (torch DistributedSampler order, then consecutive chunks)."""
    from torch.utils.data import DistributedSampler

    class _Len:
        def __len__(self):
            return n

    sampler = DistributedSampler(_Len(), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed,
                                 drop_last=world > 1)
    sampler.set_epoch(epoch)
    order = list(sampler)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def make_loader(dataset: ClipDataset, batches, num_workers: int = 0):
    # Each new loader iterator draws a base seed; from the global RNG that draw would happen at a
    # different point of a resumed run (a loader per epoch, restarted mid-epoch) and shift every
    # later random number (e.g. codebook restarts). The clips' randomness has its own seeds.
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=num_workers,
                                       generator=torch.Generator().manual_seed(0))


@dataclass
class Position:
    """How far a run is: optimiser steps done, the epoch, and how many of its batches are used.

    Checkpoints store all three, so a resumed run continues with the very batch it would have
    taken next, in the same order (the order is a function of seed, epoch and rank).
    """
    step: int = 0
    epoch: int = 0
    batch_pos: int = 0

    @classmethod
    def from_state(cls, state: dict) -> "Position":
        return cls(state["step"], state["epoch"], state["batch_pos"])

    def to_state(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "batch_pos": self.batch_pos}


def rank_batch(cfg, ctx) -> int:
    """This process's share of the global ``batch_size`` (DDP splits it evenly over the ranks)."""
    if cfg.batch_size % ctx.world:
        raise UserError(f"batch_size {cfg.batch_size} does not split evenly over {ctx.world} processes "
                        "(batch_size is the global batch)")
    return cfg.batch_size // ctx.world


def total_steps(train_set: ClipDataset, cfg, ctx) -> int:
    """Steps of the whole run: ``cfg.max_steps`` when set, else ``cfg.epochs`` full epochs.

    A split too small for one batch per process is a UserError; trainers ask before they build
    models or write anything in the run folder.
    """
    per_epoch = len(epoch_batches(len(train_set), rank_batch(cfg, ctx), seed=cfg.seed, epoch=0, rank=ctx.rank,
                                  world=ctx.world, drop_last=cfg.drop_last))
    if per_epoch == 0:
        raise UserError(f"train split has {len(train_set)} clips: fewer than one batch of {cfg.batch_size}",
                        train_set.dataset.root)
    return cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * per_epoch


def training_batches(train_set: ClipDataset, cfg, ctx, pos: Position, total: int):
    """The batches left in the run, from ``pos`` on, up to ``total`` steps.

    ``pos`` is advanced before each batch is handed out, so inside the loop body it already
    counts that batch: a checkpoint saved there resumes with the next one.
    """
    while pos.step < total and pos.epoch < cfg.epochs:
        train_set.set_epoch(pos.epoch)
        batches = epoch_batches(len(train_set), rank_batch(cfg, ctx), seed=cfg.seed, epoch=pos.epoch, rank=ctx.rank,
                                world=ctx.world, drop_last=cfg.drop_last)
        for batch in make_loader(train_set, batches[pos.batch_pos:], cfg.num_workers):
            pos.step += 1
            pos.batch_pos += 1
            if pos.batch_pos >= len(batches):
                pos.epoch, pos.batch_pos = pos.epoch + 1, 0
            yield batch
            if pos.step >= total:
                return
