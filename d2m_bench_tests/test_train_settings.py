"""Trainer settings and operations: released defaults, range checks, straight-through forms, global
batch under DDP, CUDA RNG on resume, SIGINT/SIGTERM checkpoints, Jukebox VQ-VAE loss, checkpoint errors."""
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from d2m_bench.errors import UserError
from d2m_bench.models.vqvae import VQVAE, VQVAEConfig, load_vqvae
from d2m_bench.synth.synthetic import make_tiny_dataset
from d2m_bench.training.config import D2MTrainConfig, VQVAETrainConfig, resolve
from d2m_bench_tests.helpers import save_tiny_vqvae


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("settings")
    data = make_tiny_dataset(root / "data", kind="aistpp", n_train=2, n_test=1)
    save_tiny_vqvae(root / "vqvae.pt")
    return {"data": data, "vqvae": str(root / "vqvae.pt")}


def test_defaults_are_the_released_behaviour():
    d2m, vq = D2MTrainConfig(), VQVAETrainConfig()
    assert d2m.straight_through is False  # released: the lookup runs under no_grad
    assert (d2m.st_grad_scale, d2m.st_warmup_steps) == (0.01, 0)  # the opt-in form that did not diverge
    assert (d2m.batch_size, d2m.lr_g, d2m.lr_d, d2m.beta1, d2m.beta2) == (16, 1e-4, 1e-4, 0.5, 0.9)
    assert (d2m.lambda_code_cont, d2m.lambda_code_quant, d2m.lambda_wav, d2m.lambda_mel) == (5, 8, 40, 15)
    # Jukebox `vqvae` hparams + opt defaults: lmix l2 1 + linf 0.02 (k 2048), bandwidth-normalised
    # losses, lr 3e-4 with a 100-step warm-up, no gain augmentation.
    assert (vq.recons_l2, vq.recons_linf, vq.linf_k, vq.bandwidth_norm) == (1.0, 0.02, 2048, True)
    assert (vq.lr, vq.lr_warmup, vq.augment, vq.commit, vq.multispectral) == (3e-4, 100, False, 0.02, 1.0)


@pytest.mark.parametrize("key,value,words", [
    ("lr_g", "nan", "lr_g: must be a finite number > 0"),
    ("num_d", 0, "num_d: must be a finite number >= 1"),
    ("batch_size", 0, "batch_size: must be a finite number >= 1"),
    ("g_width", 0, "g_width: must be a finite number > 0"),
    ("lambda_wav", float("inf"), "lambda_wav: must be a finite number >= 0"),
    ("lambda_mel", -1, "lambda_mel: must be a finite number >= 0"),
    ("epochs", 0, "epochs: must be a finite number >= 1"),
    ("max_steps", -1, "max_steps: must be a finite number >= 0"),
    ("beta1", 1.0, "beta1: must be a finite number >= 0 and < 1"),
    ("level", "mid", "level: must be 'high' or 'low'"),
    ("st_grad_scale", -0.5, "st_grad_scale"),
    ("res_blocks", float("inf"), "res_blocks: cannot use value inf"),
])
def test_bad_d2m_settings_fail_before_anything_is_written(assets, tmp_path, key, value, words):
    from d2m_bench.training.train_d2m import train_d2m

    with pytest.raises(UserError) as err:
        train_d2m(assets["data"], tmp_path / "run", overrides={"size": "tiny", "vqvae": assets["vqvae"], key: value},
                  progress=False)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("key,value,words", [
    ("lr", -1.0, "lr: must be a finite number > 0"),
    ("downs_t", [3, 2], "downs_t: must be 3 whole numbers >= 1"),
    ("l_mu", 1.5, "l_mu: must be a finite number >= 0 and < 1"),
    ("recons_linf", float("nan"), "recons_linf"),
    ("gain_min", 2.0, "gain_min (2.0) must not exceed gain_max"),
])
def test_bad_vqvae_settings_are_user_errors(key, value, words):
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace(")", r"\)")):
        resolve(VQVAETrainConfig, {key: value})


def test_cli_steps_below_one_is_one_line_and_writes_nothing(assets, tmp_path, cli):
    for args in (("--steps", "-1"), ("--set", "lr_g=nan"), ("--batch-size", "0")):
        r = cli("train", "d2m-high", "--data", assets["data"], "--out-dir", tmp_path / "run", "--vqvae", assets["vqvae"],
                "--size", "tiny", "-q", *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (tmp_path / "run").exists()
    assert "--steps must be >= 1, got -1" in cli("train", "vqvae", "--data", assets["data"], "--out-dir", tmp_path / "v",
                                                   "--steps", "-1").stderr


def test_straight_through_ramp_and_gradient_scale():
    from d2m_bench.training.train_d2m import wav_mel_weight

    on = resolve(D2MTrainConfig, {"straight_through": True, "st_warmup_steps": 4})
    assert [wav_mel_weight(on, s) for s in (1, 2, 4, 9)] == [0.25, 0.5, 1.0, 1.0]
    off = resolve(D2MTrainConfig, {"st_warmup_steps": 4})
    assert wav_mel_weight(off, 1) == 1.0  # the terms train nothing without straight-through
    vq = VQVAE(VQVAEConfig(width=4, depth=1, l_bins=8, emb_width=4, multipliers=(1, 1, 1)))
    vq.bottleneck.level_blocks[2].k.normal_()
    x = torch.randn(2, 4, 5, requires_grad=True)
    for scale in (1.0, 0.1, 0.0):
        x.grad = None
        q = vq.lookup(x, 2, straight_through=True, grad_scale=scale)
        nearest = vq.lookup(x.detach(), 2)
        assert torch.allclose(q.detach(), nearest, atol=1e-6)  # forward value: the codebook vectors (x + (q - x))
        (q * 3).sum().backward()
        assert torch.allclose(x.grad, torch.full_like(x, 3 * scale))
    assert not vq.lookup(x, 2).requires_grad  # default: released (no gradient)


def test_batch_size_is_global_and_split_over_ranks():
    from d2m_bench.training.data import rank_batch
    from d2m_bench.training.runner import Dist

    cfg = resolve(D2MTrainConfig, {"batch_size": 16})
    assert [rank_batch(cfg, Dist(world=w)) for w in (1, 2, 4, 8)] == [16, 8, 4, 2]
    with pytest.raises(UserError, match="batch_size 16 does not split evenly over 3 processes"):
        rank_batch(cfg, Dist(world=3))


def test_resume_with_fewer_or_more_gpus_restores_what_fits(monkeypatch):
    from d2m_bench.training import runner

    state = runner.rng_state()
    state["cuda"] = [torch.full((8,), i, dtype=torch.uint8) for i in range(4)]  # saved on 4 GPUs
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, i: calls.append((int(s[0]), i)))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    note = runner.set_rng_state(state)
    assert calls == [(0, 0)] and "4 saved, 1 device(s) visible; restored 1" in note
    calls.clear()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert runner.set_rng_state(state) is None and calls == [(i, i) for i in range(4)]
    calls.clear()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 6)
    assert "restored 4" in runner.set_rng_state(state) and len(calls) == 4


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_a_checkpoint_before_exiting(assets, tmp_path, sig):
    run = tmp_path / "run"
    code = "import sys; from d2m_bench.cli import main; sys.exit(main())"
    args = ["train", "d2m-high", "--data", str(assets["data"]), "--out-dir", str(run), "--vqvae", assets["vqvae"],
            "--size", "tiny", "--steps", "100000", "--batch-size", "2", "-q", "--set", "sample_every=0",
            "--set", "save_every=0", "--set", "augment=false"]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 600
    losses = run / "losses.csv"
    while time.time() < deadline and proc.poll() is None:
        if losses.is_file() and len(losses.read_text().splitlines()) >= 3:  # header + 2 steps
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()
    assert not (run / "checkpoint.pt").exists()  # save_every=0: nothing saved before the signal
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 128 + sig, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"interrupted by {signal.Signals(sig).name} after step" in lines[0]
    step = int(lines[0].split("after step ")[1].split(";")[0])
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == step >= 2
    from d2m_bench.training.runner import read_losses
    from d2m_bench.training.train_d2m import train_d2m

    assert [r["step"] for r in read_losses(run)] == list(range(1, step + 1))
    assert train_d2m(assets["data"], run, overrides={"max_steps": step + 1}, resume=True, progress=False)["step"] == step + 1


def test_jukebox_vqvae_loss_terms():
    from d2m_bench.models.losses import linf_loss, multispectral_norm

    x = torch.zeros(2, 1, 6)
    y = torch.tensor([[[0., 1, 2, 3, 0, 0]], [[4., 0, 0, 0, 0, 1]]])
    # squared errors: clip 0 {9, 4, 1, 0, 0, 0}, clip 1 {16, 1, 0, ...}; top 2 each: (9 + 4 + 16 + 1) / 4
    assert float(linf_loss(y, x, 2)) == pytest.approx(7.5)
    assert float(linf_loss(y, x, 100)) == pytest.approx((14 + 17) / 12)  # k capped at the clip length
    # Frobenius norm of the STFT magnitude difference, per example, averaged over resolutions.
    a = torch.randn(2, 4096, dtype=torch.float64)
    b = torch.zeros_like(a)
    ref = []
    for n_fft, hop, win in ((512, 128, 512), (256, 64, 128)):
        w = np.zeros(n_fft)
        w[(n_fft - win) // 2:(n_fft - win) // 2 + win] = np.hanning(win + 1)[:-1]  # periodic Hann, centred
        per = []
        for row in a.numpy():
            padded = np.pad(row, n_fft // 2, mode="reflect")
            frames = np.stack([padded[i:i + n_fft] * w for i in range(0, len(padded) - n_fft + 1, hop)])
            per.append(np.sqrt((np.abs(np.fft.rfft(frames, axis=1)) ** 2).sum()))
        ref.append(per)
    got = multispectral_norm(a, b, n_ffts=(512, 256), hops=(128, 64), wins=(512, 128))
    assert np.allclose(got.numpy(), np.mean(ref, axis=0), rtol=1e-6)


def test_bandwidth_of_a_square_wave_and_lr_warmup(tmp_path):
    from d2m_bench.io.audio import write_audio
    from d2m_bench.training.data import ClipDataset
    from d2m_bench.training.train_vqvae import data_bandwidth, lr_factor

    data = make_tiny_dataset(tmp_path / "data", n_train=2, n_test=1)
    square = np.where(np.arange(44100) % 100 < 50, 0.5, -0.5).astype(np.float32)
    for seg in ClipDataset(data, "train", audio_only=True).segments:
        write_audio(data / seg.audio, square, 22050)
    bw = data_bandwidth(ClipDataset(data, "train", audio_only=True))
    # peak-normalised to +-0.95 with equal halves: mean 0, |x| = 0.95, variance 0.95^2
    assert bw["l1"] == pytest.approx(0.95, rel=1e-6) and bw["l2"] == pytest.approx(0.95 ** 2, rel=1e-6)
    assert bw["spec"] > 0
    cfg = resolve(VQVAETrainConfig, {})
    assert [lr_factor(cfg, s) for s in (0, 1, 50, 100, 5000)] == [0.0, 0.01, 0.5, 1.0, 1.0]
    assert lr_factor(resolve(VQVAETrainConfig, {"lr_warmup": 0}), 0) == 1.0


def test_vqvae_training_checkpoint_is_accepted_and_a_d2m_checkpoint_is_named(assets, tmp_path):
    from d2m_bench.training.train_d2m import train_d2m
    from d2m_bench.training.train_vqvae import train_vqvae

    data = make_tiny_dataset(tmp_path / "data", n_train=2, n_test=1)
    train_vqvae(data, tmp_path / "vq", progress=False, overrides={"size": "tiny", "max_steps": 1})
    from_ckpt, from_file = load_vqvae(tmp_path / "vq" / "checkpoint.pt"), load_vqvae(tmp_path / "vq" / "vqvae.pt")
    ref = from_file.state_dict()
    assert all(torch.equal(from_ckpt.state_dict()[k], ref[k]) for k in ref)
    run = tmp_path / "gan"
    train_d2m(data, run, progress=False, overrides={"size": "tiny", "max_steps": 1, "sample_every": 0,
                                                    "vqvae": str(tmp_path / "vq" / "checkpoint.pt")})
    with pytest.raises(UserError, match="not a VQ-VAE; pass the vqvae.pt"):
        load_vqvae(run / "checkpoint.pt")


def test_generate_denoises_by_default_and_says_how_to_install(assets, tmp_path, monkeypatch):
    import importlib.util

    from d2m_bench.training import generate as gen
    from d2m_bench.training.train_d2m import train_d2m

    train_d2m(assets["data"], tmp_path / "run", progress=False,
              overrides={"size": "tiny", "max_steps": 1, "sample_every": 0, "vqvae": assets["vqvae"]})
    prov = gen.generate(tmp_path / "run" / "checkpoint.pt", assets["data"], tmp_path / "g", progress=False)
    assert prov["denoise"]["applied"] and prov["denoise"]["call"].startswith("noisereduce.reduce_noise")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "noisereduce" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install 'd2m-bench\[denoise\]', or pass --no-denoise"):
        gen.generate(tmp_path / "run" / "checkpoint.pt", assets["data"], tmp_path / "g2", progress=False)
    assert not (tmp_path / "g2").exists()


def test_trust_checkpoint_help_says_the_same_everywhere(cli):
    texts = [cli(*cmd, "--help").stdout for cmd in (("train", "d2m-high"), ("generate",), ("import", "d2m-gan"))]
    for text in texts:
        flat = " ".join(text.split())
        assert "--trust-checkpoint" in flat and "vqvae.pth.tar" in flat and "never need it" in flat
