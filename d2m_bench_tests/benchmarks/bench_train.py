"""`make bench`: D2M-GAN training speed and peak memory on CPU (synthetic AIST++-shaped clips).

One optimiser step = one D step + one G step (train_d2m.train_step) at batch 2, with the paper
sizes (generator width 1: ~140 M parameters for d2m-low, ~54 M for d2m-high; Jukebox-size
VQ-VAE, frozen) and, for scale, the "tiny" test preset. Peak memory is the max RSS of a fresh
subprocess doing 2 steps (VmHWM; includes Python, torch and the data). These CPU figures are
taken on the CPU even where a GPU exists.

Where CUDA is available, d2m-low (paper size) is also timed on the GPU at the paper's batch 16,
with torch.cuda.max_memory_allocated as the peak (tensors only, not the caching allocator's
reserve, which is reported beside it) and the device name; without CUDA that test is skipped
with the reason shown by ``pytest -rs``.
"""
import json
import subprocess
import sys
import textwrap

import pytest
import torch

from d2m_bench.models.losses import LogMel
from d2m_bench.models.vqvae import VQVAE, VQVAEConfig, save_vqvae
from d2m_bench.synth.synthetic import make_tiny_dataset
from d2m_bench.training.config import D2MTrainConfig, resolve
from d2m_bench.training.data import ClipDataset
from d2m_bench.training.train_d2m import build_discriminator, frozen_vqvae, generator_config, train_step
from d2m_bench.models.generator import D2MGenerator

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_train")
    data = make_tiny_dataset(root / "data", n_train=4, n_test=1)
    out = {"data": data}
    for name, cfg in (("paper", VQVAEConfig()), ("tiny", VQVAEConfig(width=8, depth=1, l_bins=64, emb_width=16,
                                                                     multipliers=(1, 1, 1)))):
        torch.manual_seed(0)
        vq = VQVAE(cfg)
        for block in vq.bottleneck.level_blocks:
            block.k.normal_(0, 0.05)
        save_vqvae(vq, root / f"vq_{name}.pt")
        out[name] = str(root / f"vq_{name}.pt")
    return out


def _setup(assets, level, size, device=CPU, batch_size=2):
    cfg = resolve(D2MTrainConfig, {"level": level, "size": size, "batch_size": batch_size, "vqvae": assets[size]})
    ds = ClipDataset(assets["data"], "train", augment=True)
    vq = frozen_vqvae(cfg.vqvae, device)
    G = D2MGenerator(generator_config(cfg, ds.info, vq, has_genre=True)).to(device)
    D = build_discriminator(cfg).to(device)
    batch = torch.utils.data.default_collate([ds[i % len(ds)] for i in range(batch_size)])
    kw = dict(G=G, D=D, vqvae=vq, mel=LogMel().to(device), cfg=cfg, level=1 if level == "low" else 2,
              has_genre=True, device=device,
              optG=torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.9)),
              optD=torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.9)))
    n_params = sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters())
    return batch, kw, n_params


def _peak_rss_mib(assets, level, size):
    code = textwrap.dedent(f"""
        import torch, sys
        sys.path.insert(0, {repr(str(__import__('pathlib').Path(__file__).parent))})
        from bench_train import _setup
        batch, kw, _ = _setup({ {k: str(v) for k, v in assets.items()}!r}, {level!r}, {size!r})
        for _ in range(2):
            from d2m_bench.training.train_d2m import train_step
            train_step(batch, **kw)
        # VmHWM, not ru_maxrss: the latter survives exec and would report the parent's peak.
        hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]
        print(int(hwm.split()[1]) / 1024)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("level,size,rounds", [("low", "paper", 3), ("high", "paper", 3), ("low", "tiny", 10)])
def test_train_step_speed(benchmark, assets, level, size, rounds):
    batch, kw, (g_params, d_params) = _setup(assets, level, size)
    benchmark.pedantic(train_step, args=(batch,), kwargs=kw, rounds=rounds, iterations=1, warmup_rounds=1)
    mean = benchmark.stats.stats.mean
    rss = _peak_rss_mib(assets, level, size)
    report = {"level": level, "size": size, "device": "cpu", "threads": torch.get_num_threads(),
              "batch": 2, "G_params_M": round(g_params / 1e6, 2), "D_params_M": round(d_params / 1e6, 2),
              "s_per_step": round(mean, 3), "steps_per_s": round(1 / mean, 4),
              "s_per_step_min": round(benchmark.stats.stats.min, 3), "s_per_step_median": round(benchmark.stats.stats.median, 3), "peak_rss_MiB": round(rss)}
    benchmark.extra_info.update(report)
    print("\nbench_train", json.dumps(report))
    assert mean > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU figures (d2m-low, batch 16) need one")
def test_train_step_speed_gpu(benchmark, assets):
    device = torch.device("cuda", 0)
    batch, kw, (g_params, d_params) = _setup(assets, "low", "paper", device=device, batch_size=16)

    def step():
        train_step(batch, **kw)
        torch.cuda.synchronize(device)  # kernels are asynchronous: time their completion

    step()  # first step: cuDNN autotuning and allocator growth, kept out of the peak as well
    torch.cuda.reset_peak_memory_stats(device)
    benchmark.pedantic(step, rounds=10, iterations=1, warmup_rounds=1)
    stats = benchmark.stats.stats
    report = {"level": "low", "size": "paper", "device": torch.cuda.get_device_name(device), "batch": 16,
              "torch": torch.__version__, "G_params_M": round(g_params / 1e6, 2), "D_params_M": round(d_params / 1e6, 2),
              "s_per_step": round(stats.mean, 4), "steps_per_s": round(1 / stats.mean, 3),
              "s_per_step_min": round(stats.min, 4), "s_per_step_median": round(stats.median, 4),
              "peak_allocated_MiB": round(torch.cuda.max_memory_allocated(device) / 2 ** 20),
              "peak_reserved_MiB": round(torch.cuda.max_memory_reserved(device) / 2 ** 20)}
    benchmark.extra_info.update(report)
    print("\nbench_train", json.dumps(report))
    assert stats.mean > 0 and report["peak_allocated_MiB"] > 0
