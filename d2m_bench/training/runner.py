"""Run-folder plumbing shared by the trainers: devices, DDP, per-step logs, RNG state."""
from __future__ import annotations

import csv
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..errors import UserError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Dist:
    """One process, or DDP when WORLD_SIZE > 1 (torchrun sets RANK/LOCAL_RANK/WORLD_SIZE/MASTER_*).

    Backend: nccl on CUDA, gloo on CPU. The process group is created once per process. A CUDA
    device always carries an index (``cuda`` / ``auto`` -> ``cuda:LOCAL_RANK``, 0 without
    torchrun): ``torch.cuda.set_device`` rejects an index-less device.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    dev = pick_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Dist(rank, world, local, dev)


def pick_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> a torch.device (CUDA ones always indexed)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not m:
        raise UserError(f"unknown device '{device}' (auto, cpu, cuda, cuda:N)")
    if not torch.cuda.is_available():
        raise UserError(f"device '{device}' requested but no CUDA device is available")
    index = int(m.group(1)) if m.group(1) is not None else local_rank
    count = torch.cuda.device_count()
    if index >= count:
        raise UserError(f"device cuda:{index} requested but only {count} CUDA device(s) are visible")
    return torch.device("cuda", index)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    # Plain types and tensors only, so checkpoints load with torch.load(weights_only=True).
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                       cached], "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> str | None:
    """Restore the RNG states saved by :func:`rng_state`; returns a note when not all fit.

    CUDA generators are per device: a run saved with 4 visible GPUs and resumed with 1 restores
    device 0's state and reports the other 3 (resuming on more GPUs than saved leaves the extra
    devices at their fresh seeds, also reported). A note, not an error: only bit-for-bit
    reproduction of CUDA randomness is lost.
    """
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    saved = list(state.get("cuda") or [])
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for index in range(min(len(saved), visible)):
        torch.cuda.set_rng_state(saved[index], index)
    if saved and len(saved) != visible:
        return (f"CUDA RNG states: {len(saved)} saved, {visible} device(s) visible; restored "
                f"{min(len(saved), visible)}, so CUDA randomness is not bit-for-bit that of the saved run")
    return None


class TrainingInterrupted(UserError):
    """SIGINT / SIGTERM during training, after the checkpoint was written (exit 128 + signal)."""

    def __init__(self, signum: int, step: int, path):
        import signal

        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name} after step {step}; checkpoint written, "
                         "continue with --resume", path)


class StopSignals:
    """Turns SIGINT / SIGTERM into a request to stop after the current step (main thread only).

    Under DDP the request is shared (all-reduce MAX), so every rank stops at the same step and
    none is left waiting in a collective.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.signum = 0
        self._old = {}

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name)
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False

    def requested(self, ctx: "Dist") -> int:
        """The signal number to stop for (0: carry on); the same on every rank."""
        if ctx.world > 1:
            flag = torch.tensor([self.signum], dtype=torch.int64, device=ctx.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            return int(flag.item())
        return self.signum


def save_or_stop(stop: StopSignals, ctx: "Dist", cfg, step: int, save, ckpt_path, bar, log) -> None:
    """After a step: save on the save_every schedule or when a stop was asked for; on a stop,
    close the bar and log and raise only after the save, so --resume finds this step's checkpoint."""
    signum = stop.requested(ctx)
    if signum or (cfg.save_every and step % cfg.save_every == 0):
        save()
    if signum:
        bar.close()
        log.close()
        raise TrainingInterrupted(signum, step, ckpt_path)


class StepLog:
    """Per-step losses: ``losses.csv`` (always) and TensorBoard scalars when tensorboard is installed.

    On resume the CSV keeps only rows up to the resumed step, so a crash between a checkpoint
    and the next one leaves no duplicated steps.
    """

    def __init__(self, run_dir, columns, *, resume_step: int | None = None, enabled: bool = True):
        self.enabled = enabled
        self.columns = ["step", "epoch", *columns]
        self.path = Path(run_dir) / "losses.csv"
        self.writer = None
        if not enabled:
            return
        kept = []
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="") as fh:
                kept = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
        with open(self.path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(kept)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / "tb"))
        except ImportError:
            self.writer = None

    def log(self, step: int, epoch: int, values: dict) -> None:
        if not self.enabled:
            return
        row = {"step": step, "epoch": epoch, **{k: f"{v:.8g}" for k, v in values.items()}}
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore").writerow(row)
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"loss/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_losses(run_dir) -> list[dict]:
    with open(Path(run_dir) / "losses.csv", newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def unwrap(module):
    return module.module if hasattr(module, "module") else module
