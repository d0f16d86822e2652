"""D2M-GAN trainer: shapes for every (dataset, level) pair, flags, resume, overfitting, DDP, generate + eval."""
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from d2m_bench.errors import UserError
from d2m_bench.models.discriminator import MultiScaleDiscriminator
from d2m_bench.models.generator import D2MGenerator, GeneratorConfig
from d2m_bench.models.vqvae import VQVAE, VQVAEConfig
from d2m_bench.synth.synthetic import make_tiny_dataset
from d2m_bench.training.runner import read_losses
from d2m_bench.training.train_d2m import train_d2m
from d2m_bench_tests.helpers import save_tiny_vqvae

PAIRS = [("aistpp", "high"), ("aistpp", "low"), ("tiktok", "high"), ("tiktok", "low")]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("d2m")
    data = {kind: make_tiny_dataset(root / kind, kind=kind, n_train=2, n_test=2) for kind in ("aistpp", "tiktok")}
    save_tiny_vqvae(root / "vqvae.pt")
    return {"data": data, "vqvae": str(root / "vqvae.pt")}


def _tiny(assets, level, **extra):
    return {"size": "tiny", "level": level, "vqvae": assets["vqvae"], "sample_every": 0, "save_every": 0,
            "augment": False, **extra}


def test_paper_size_time_axis_shapes():
    # AIST++: fusion 1024 + 2048 + 256 = 3328; high ends at exactly 344 steps (no time Linear).
    high = D2MGenerator(GeneratorConfig(level="high", code_len=344))
    assert (high.generator.lin.in_features, high.generator.lin.out_features) == (3328, 2058)
    assert high.generator.fc is None and high.mencoder.lin2.in_features == 786
    assert high.generator.genre_embed.weight.shape == (10, 256)
    low = D2MGenerator(GeneratorConfig(level="low", code_len=1378))
    assert (low.generator.lin.out_features, low.generator.fc.in_features, low.generator.fc.out_features) == (2048, 1045, 1378)
    # TikTok-low as released (no input Linear, 3072-d fusion): the conv stack yields 1301 steps,
    # where the released Linear(1045, 1378) crashed.
    tk = D2MGenerator(GeneratorConfig(level="low", code_len=1378, genre_dim=0, motion_frames=60, motion_dim=75))
    assert tk.generator.lin is None and tk.generator.genre_embed is None
    assert tk.generator.fc.in_features == 1301 and tk.mencoder.lin2.in_features == 786
    with torch.no_grad():
        codes = high(torch.randn(1, 120, 219), torch.randn(1, 1, 2048), torch.tensor([3]))
    assert codes.shape == (1, 64, 344) and codes.abs().max() <= 100


@pytest.mark.parametrize("level,lengths", [("high", [86, 43, 22]), ("low", [345, 173, 87])])
def test_discriminator_score_map_lengths(level, lengths):
    # (B, 64, T) flattened to (B, 1, 64 T); paper-size channel rules, reduced width (lengths do not depend on it).
    d = MultiScaleDiscriminator(width=1 / 16)
    t = 344 if level == "high" else 1378
    outs = d(torch.randn(2, 64, t))
    assert [o[-1].shape for o in outs] == [(2, 1, n) for n in lengths]
    assert [len(o) for o in outs] == [7, 7, 7]
    full = MultiScaleDiscriminator()
    convs = [full.model["disc_0"].model[f"layer_{i}"][0] for i in range(1, 5)]
    assert [(c.in_channels, c.out_channels, c.groups, c.kernel_size[0]) for c in convs] == [
        (32, 128, 8, 41), (128, 512, 32, 41), (512, 1024, 128, 41), (1024, 1024, 256, 41)]


@pytest.mark.parametrize("kind,level", PAIRS)
def test_every_pair_trains_and_generates(assets, tmp_path, kind, level):
    from d2m_bench.training.generate import generate

    run = tmp_path / "run"
    out = train_d2m(assets["data"][kind], run, overrides=_tiny(assets, level, max_steps=1), progress=False)
    assert out["step"] == 1 and (run / "checkpoint.pt").is_file()
    saved = json.loads((run / "config.json").read_text())
    assert saved["level"] == level and saved["g_width"] == 1 / 32
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    g = state["generator_config"]
    assert g["code_len"] == (344 if level == "high" else 1378)
    assert g["genre_dim"] == (16 if kind == "aistpp" else 0)
    assert (g["motion_frames"], g["motion_dim"]) == ((120, 219) if kind == "aistpp" else (60, 75))
    prov = generate(run / "checkpoint.pt", assets["data"][kind], tmp_path / "gen", progress=False, denoise=False)
    samples = 44032 if level == "high" else 44096
    ids = sorted(prov["segments"])
    for part, n in (("gt", 44100), ("recon", samples), ("generated", samples)):
        files = sorted((tmp_path / "gen" / part).glob("*.wav"))
        assert [f.stem for f in files] == ids
        for f in files:
            info = sf.info(str(f))
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (22050, 1, n, "PCM_16")


def test_straight_through_flag_controls_wav_gradient(assets):
    from d2m_bench.training.train_d2m import decode_codes

    vq = VQVAE(VQVAEConfig(width=8, depth=1, l_bins=64, emb_width=16, multipliers=(1, 1, 1)))
    vq.bottleneck.level_blocks[2].k.normal_(0, 50)
    codes = (torch.randn(1, 16, 10) * 50).requires_grad_()
    for st in (True, False):
        _, wav = decode_codes(vq, codes, 2, straight_through=st)
        if st:
            wav.abs().mean().backward()
            assert codes.grad is not None and codes.grad.abs().sum() > 0
        else:
            assert not wav.requires_grad  # released behaviour: wav/mel losses cannot train G


def test_resume_gives_bit_identical_next_steps(assets, tmp_path):
    data = assets["data"]["aistpp"]
    train_d2m(data, tmp_path / "a", overrides=_tiny(assets, "high", max_steps=4, augment=True), progress=False)
    train_d2m(data, tmp_path / "b", overrides=_tiny(assets, "high", max_steps=2, augment=True), progress=False)
    train_d2m(data, tmp_path / "b", overrides={"max_steps": 4}, resume=True, progress=False)
    a, b = read_losses(tmp_path / "a"), read_losses(tmp_path / "b")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    keys = [k for k in a[0] if k != "seconds"]
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
    sa = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["generator"]
    sb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["generator"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_overfits_two_clips(assets, tmp_path):
    train_d2m(assets["data"]["aistpp"], tmp_path / "run", overrides=_tiny(assets, "high", max_steps=24),
              progress=False)
    rows = read_losses(tmp_path / "run")
    first = rows[0]
    last = {k: np.mean([r[k] for r in rows[-3:]]) for k in ("loss_g", "code_cont", "code_quant")}
    assert last["loss_g"] < 0.5 * first["loss_g"], (first, last)
    assert last["code_cont"] < 0.3 * first["code_cont"], (first, last)


def test_config_file_cli_precedence_and_errors(assets, tmp_path):
    from d2m_bench.training.config import D2MTrainConfig, read_config_file, resolve

    (tmp_path / "c.toml").write_text('size = "tiny"\n[loss]\nlambda_wav = 7\nlambda_mel = 2\n')
    cfg = resolve(D2MTrainConfig, read_config_file(tmp_path / "c.toml"), {"lambda_mel": 3})
    assert (cfg.lambda_wav, cfg.lambda_mel, cfg.g_width, cfg.lambda_fm) == (7.0, 3.0, 1 / 32, 3.0)
    with pytest.raises(UserError, match="lambda_wab"):
        resolve(D2MTrainConfig, {"lambda_wab": 1})
    with pytest.raises(UserError, match="VQ-VAE"):
        train_d2m(assets["data"]["aistpp"], tmp_path / "r", overrides={"size": "tiny"}, progress=False)


def test_train_audio_gain_augmentation_only_on_train(assets):
    from d2m_bench.training.data import ClipDataset

    data = assets["data"]["aistpp"]
    train = ClipDataset(data, "train", augment=True, seed=1)
    test = ClipDataset(data, "test", augment=False)
    peaks = []
    for epoch in range(5):
        train.set_epoch(epoch)
        peaks += [float(train[i]["audio"].abs().max()) for i in range(len(train))]
    assert all(0.3 * 0.95 - 1e-6 <= p <= 0.95 + 1e-6 for p in peaks) and np.std(peaks) > 0.01
    assert all(abs(float(test[i]["audio"].abs().max()) - 0.95) < 1e-4 for i in range(len(test)))
    train.set_epoch(2)
    assert torch.equal(train[0]["audio"], train[0]["audio"])  # deterministic per (seed, epoch, index)


def _ddp_worker(rank, world, port, data, run, overrides):
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    train_d2m(data, run, overrides=overrides, progress=False)


def test_ddp_two_gloo_processes_match_single_process(assets, tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = assets["data"]["aistpp"]
    # batch_size is the global batch: 2 ranks x 1 clip average the same per-clip gradients as 1
    # process x batch 2 (same clips: DistributedSampler deals one permutation round-robin).
    mp.spawn(_ddp_worker, args=(2, port, str(data), str(tmp_path / "ddp"),
                                _tiny(assets, "high", max_steps=2, batch_size=2, device="cpu")), nprocs=2, join=True)
    train_d2m(data, tmp_path / "single", overrides=_tiny(assets, "high", max_steps=2, batch_size=2), progress=False)
    ddp = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    single = torch.load(tmp_path / "single" / "checkpoint.pt", weights_only=True)
    assert ddp["step"] == single["step"] == 2
    # Adam's first steps move each weight by about +-lr = 1e-4 per step whatever the gradient size,
    # so float reduction-order noise flips the step of weights whose gradient is ~0 (saturated
    # tanh): compare robust statistics, not every element. A DDP run whose ranks did not average
    # gradients would differ by ~1e-4 on most weights.
    for part in ("generator", "discriminator"):
        diff = torch.cat([(ddp[part][k] - single[part][k]).abs().flatten() for k in single[part]])
        assert diff.median() < 1e-5, part
        assert (diff > 2e-5).float().mean() < 0.15, part
        assert diff.max() < 6e-4, part  # at most a few Adam steps apart
    # Logged losses are the mean over ranks: at step 1 (same initial weights) rank means of batch-1
    # losses equal the batch-2 means of the single process. Rank 0 alone would log clip 0's losses.
    ddp_rows, single_rows = read_losses(tmp_path / "ddp"), read_losses(tmp_path / "single")
    assert len(ddp_rows) == 2
    for k in ("loss_d", "code_cont", "code_quant", "wav", "mel"):
        assert ddp_rows[0][k] == pytest.approx(single_rows[0][k], rel=1e-5), k
    # adv and fm come after one D step, which reduction-order noise nudges (see above); loss_g is
    # dominated by the code terms and stays close.
    assert ddp_rows[0]["loss_g"] == pytest.approx(single_rows[0]["loss_g"], rel=1e-3)
    assert ddp_rows[0]["adv"] == pytest.approx(single_rows[0]["adv"], abs=2e-3)


def test_generate_cli_then_eval_end_to_end(assets, tmp_path, cli):
    data = assets["data"]["aistpp"]
    run = tmp_path / "run"
    train_d2m(data, run, overrides=_tiny(assets, "high", max_steps=1), progress=False)
    out = tmp_path / "gen"
    r = cli("generate", "--checkpoint", run / "checkpoint.pt", "--data", data, "--out-dir", out, "--denoise", "--quiet")
    assert r.returncode == 0, r.stderr
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["denoise"]["applied"] and prov["denoise"]["version"]
    # One step from the released init: the tiny model's tokens do not depend on the motion, and
    # generate says so on stderr, in provenance.json, and in the copy eval reads beside the clips.
    assert prov["motion_dependence"]["input_independent"] is True and "ignores the dance" in r.stderr
    assert json.loads((out / "generated" / "provenance.json").read_text()) == prov
    gt = sorted(p.stem for p in (out / "gt").glob("*.wav"))
    assert gt == sorted(p.stem for p in (out / "generated").glob("*.wav")) and len(gt) == 2
    r = cli("eval", "--pred", out / "generated", "--gt", out / "gt", "--out", tmp_path / "res.json", "-q", "-j", "1")
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "res.json").read_text())
    text = json.dumps(result)
    assert all(sid in text for sid in gt)
    assert [w for w in result["sections"]["sanity"]["warnings"] if "ignores the dance" in w]
    bad = cli("generate", "--checkpoint", assets["vqvae"], "--data", data, "--out-dir", tmp_path / "x")
    assert bad.returncode == 2 and "not a d2m-bench D2M-GAN checkpoint" in bad.stderr


@pytest.fixture(scope="module")
def sampled_run(assets, tmp_path_factory):
    """One step of d2m-high with periodic generation after every step (1 test clip)."""
    run = tmp_path_factory.mktemp("sampled") / "run"
    train_d2m(assets["data"]["aistpp"], run, overrides=_tiny(assets, "high", max_steps=1, sample_every=1, n_samples=1),
              progress=False)
    return run


def test_periodic_generation_writes_generated_clips_per_step(assets, sampled_run):
    from d2m_bench.data.dataset import Dataset

    first_test = Dataset(assets["data"]["aistpp"]).segments("test")[0].segment_id
    files = sorted(p.relative_to(sampled_run).as_posix() for p in (sampled_run / "samples").rglob("*") if p.is_file())
    assert files == [f"samples/step_0000001/generated/{first_test}.wav"]  # n_samples=1: only the first test clip
    info = sf.info(str(sampled_run / files[0]))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (22050, 1, 44032, "PCM_16")


def test_checkpoint_round_trip_reproduces_the_live_model_output(assets, sampled_run, tmp_path):
    from d2m_bench.training.generate import generate

    # The step-1 sample was written by the in-memory generator; generate rebuilds it from checkpoint.pt.
    live = next((sampled_run / "samples" / "step_0000001" / "generated").glob("*.wav"))
    generate(sampled_run / "checkpoint.pt", assets["data"]["aistpp"], tmp_path / "gen", limit=1, progress=False,
             denoise=False)
    again, _ = sf.read(str(tmp_path / "gen" / "generated" / live.name), dtype="int16")
    before, _ = sf.read(str(live), dtype="int16")
    assert np.abs(before).max() > 0 and np.array_equal(before, again)


def test_vqvae_path_is_stored_absolute_for_generate_and_resume_elsewhere(assets, tmp_path, monkeypatch):
    import shutil

    from d2m_bench.training.generate import generate

    (tmp_path / "models").mkdir()
    shutil.copy(assets["vqvae"], tmp_path / "models" / "vq.pt")
    data, run = assets["data"]["aistpp"], tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    train_d2m(data, run, overrides=_tiny(assets, "high", max_steps=1, vqvae="models/vq.pt"), progress=False)
    stored = str(tmp_path / "models" / "vq.pt")
    assert json.loads((run / "config.json").read_text())["vqvae"] == stored
    assert torch.load(run / "checkpoint.pt", weights_only=True)["vqvae"] == stored
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # "models/vq.pt" no longer resolves from here
    prov = generate(run / "checkpoint.pt", data, tmp_path / "gen", limit=1, progress=False, denoise=False)
    assert prov["vqvae"] == stored and len(list((tmp_path / "gen" / "generated").glob("*.wav"))) == 1
    assert train_d2m(data, run, overrides={"max_steps": 2}, resume=True, progress=False)["step"] == 2


def _snapshot(run):
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


def test_resume_with_other_level_or_shape_is_a_user_error_that_writes_nothing(assets, tmp_path, cli):
    data, run = assets["data"]["aistpp"], tmp_path / "run"
    train_d2m(data, run, overrides=_tiny(assets, "high", max_steps=1), progress=False)
    before = _snapshot(run)
    assert set(before) == {"config.json", "losses.csv", "checkpoint.pt"}
    r = cli("train", "d2m-low", "--data", data, "--out-dir", run, "--resume", "--steps", "2", "--quiet")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "trains the high level, not low" in r.stderr and "d2m-high --resume" in r.stderr
    r = cli("train", "d2m-high", "--data", data, "--out-dir", run, "--resume", "--steps", "2", "--set", "g_width=0.0625",
            "--quiet")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "g_width=0.03125" in r.stderr
    assert _snapshot(run) == before


def test_drop_last_batches_and_steps_per_epoch(assets, tmp_path, monkeypatch):
    from d2m_bench.synth.synthetic import make_tiny_dataset
    from d2m_bench.training import train_d2m as module
    from d2m_bench.training.data import epoch_batches

    kept = epoch_batches(5, 2, seed=0, epoch=0, drop_last=True)
    assert [len(b) for b in kept] == [2, 2] and len({i for b in kept for i in b}) == 4
    full = epoch_batches(5, 2, seed=0, epoch=0, drop_last=False)
    assert [len(b) for b in full] == [2, 2, 1] and sorted(i for b in full for i in b) == [0, 1, 2, 3, 4]
    # 3 train clips, batch 2: one full batch per epoch, the odd clip is never a batch of its own.
    data = make_tiny_dataset(tmp_path / "data3", n_train=3, n_test=1)
    sizes, real_step = [], module.train_step
    monkeypatch.setattr(module, "train_step", lambda batch, **kw: sizes.append(len(batch["audio"])) or real_step(batch, **kw))
    out = train_d2m(data, tmp_path / "run", progress=False,
                    overrides=_tiny(assets, "high", epochs=1, max_steps=0, batch_size=2, num_d=1))
    assert sizes == [2] and (out["step"], out["epoch"]) == (1, 1)  # without drop_last: [2, 1], 2 steps
    assert [(r["step"], r["epoch"]) for r in read_losses(tmp_path / "run")] == [(1, 1)]


def test_train_cli_d2m_low_writes_log_and_checkpoint(assets, tmp_path, cli):
    from d2m_bench.training.train_d2m import LOSS_COLUMNS

    run = tmp_path / "run"
    r = cli("train", "d2m-low", "--data", assets["data"]["tiktok"], "--out-dir", run, "--vqvae", assets["vqvae"],
            "--size", "tiny", "--steps", "2", "--set", "sample_every=0", "--set", "augment=false", "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"step": 2, "epoch": 2, "checkpoint": str(run / "checkpoint.pt")}
    rows = read_losses(run)
    assert list(rows[0]) == ["step", "epoch", *LOSS_COLUMNS]
    assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(list(r.values())).all() for r in rows)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2 and state["config"]["level"] == "low" and state["generator_config"]["code_len"] == 1378


def test_seed_decides_the_run(assets, tmp_path):
    data = assets["data"]["aistpp"]
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        train_d2m(data, tmp_path / name, overrides=_tiny(assets, "high", max_steps=1, seed=seed, augment=True, num_d=1),
                  progress=False)
        runs[name] = (read_losses(tmp_path / name)[0],
                      torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["generator"])
    keys = [k for k in runs["a"][0] if k != "seconds"]
    (la, ga), (lb, gb), (lc, gc) = runs["a"], runs["b"], runs["c"]
    assert [la[k] for k in keys] == [lb[k] for k in keys] and all(torch.equal(ga[k], gb[k]) for k in ga)
    assert la["loss_g"] != lc["loss_g"] and not all(torch.equal(ga[k], gc[k]) for k in ga)
