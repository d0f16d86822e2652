"""Embedding extraction across processes and machines with ``torch.distributed`` (``torchrun``).

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the first embedding step joins the
process group (gloo: it runs on every machine, and only small Python objects travel over it),
each rank embeds its share of the files that miss the cache, writes them to the content-keyed
cache, and the ranks exchange their arrays with ``all_gather_object``; every rank then holds
every embedding and scores the same numbers, and only rank 0 writes outputs.

Shares are whole groups of files (``embed_files``' groups of ``files_per_batch``), dealt out
round-robin, so every clip goes through the network in exactly the batch it would meet in a
single process: the arrays, hence every score, are equal bit for bit (with equal thread
settings; ``test_sets_distributed.py`` checks it with two gloo processes).

Without ``torchrun`` nothing here imports torch.
"""
from __future__ import annotations

import os

# Files embedded by each rank in this process's embedding calls so far (rank -> count), for the result.
SHARES: dict = {}


def world() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside ``torchrun``; joins the gloo group on first use inside."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return dist.get_rank(), dist.get_world_size()


def is_writer() -> bool:
    """True on the process that writes outputs and prints (rank 0, or the only process)."""
    return world()[0] == 0


def shard(items: list, rank: int, size: int) -> list:
    """The ``rank``-th of ``size`` round-robin shares of ``items``."""
    return items[rank::size]


def gather_dict(mine: dict) -> dict:
    """Every rank's ``mine`` merged, on every rank (``all_gather_object``); ``mine`` alone
    outside ``torchrun``."""
    rank, size = world()
    if size == 1:
        return dict(mine)
    import torch.distributed as dist

    parts = [None] * size
    dist.all_gather_object(parts, mine)
    out = {}
    for part in parts:
        out.update(part)
    return out


def record_shares(mine: int) -> None:
    """Add this call's per-rank counts of embedded files to ``SHARES`` (every rank gets them all)."""
    for rank, count in gather_dict({world()[0]: mine}).items():
        SHARES[rank] = SHARES.get(rank, 0) + count


def summary() -> dict | None:
    """What a result records of a ``torchrun`` run: world size and files embedded per rank."""
    rank, size = world()
    if size == 1:
        return None
    return {"world_size": size, "backend": "gloo", "files_embedded_per_rank": [SHARES.get(r, 0) for r in range(size)]}
