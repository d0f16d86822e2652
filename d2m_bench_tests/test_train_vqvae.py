"""Jukebox-layout VQ-VAE: checkpoint compatibility by name/shape, token counts, EMA, training."""
import numpy as np
import pytest
import torch

from d2m_bench.errors import UserError
from d2m_bench.models.bottleneck import BottleneckBlock
from d2m_bench.models.vqvae import VQVAE, VQVAEConfig, load_vqvae, save_vqvae


def jukebox_table(width=32, depth=4, emb=64, bins=2048, downs=(3, 2, 2), mult=(2, 1, 1)):
    """Expected state-dict names/shapes of openai/jukebox VQVAE with hparams ``vqvae``, spelled out
    from the module nesting of jukebox/vqvae/{vqvae,encdec,resnet,bottleneck}.py."""
    rows = {}

    def conv(name, out_c, in_c, k):
        rows[f"{name}.weight"] = (out_c, in_c, k)
        rows[f"{name}.bias"] = (out_c,)

    def resnet(prefix, w, d):
        for r in range(d):
            conv(f"{prefix}.model.{r}.model.1", w, w, 3)  # ReLU, conv3 (dilated), ReLU, conv1
            conv(f"{prefix}.model.{r}.model.3", w, w, 1)

    for model_level in range(3):
        w, d = width * mult[model_level], depth * mult[model_level]
        for j in range(model_level + 1):
            enc = f"encoders.{model_level}.level_blocks.{j}.model"
            for i in range(downs[j]):
                conv(f"{enc}.{i}.0", w, (1 if j == 0 else emb) if i == 0 else w, 4)
                resnet(f"{enc}.{i}.1", w, d)
            conv(f"{enc}.{downs[j]}", emb, w, 3)
            dec = f"decoders.{model_level}.level_blocks.{j}.model"
            conv(f"{dec}.0", w, emb, 3)
            for i in range(downs[j]):
                resnet(f"{dec}.{i + 1}.0", w, d)
                out_c = emb if i == downs[j] - 1 else w
                rows[f"{dec}.{i + 1}.1.weight"] = (w, out_c, 4)  # ConvTranspose1d: (in, out, k)
                rows[f"{dec}.{i + 1}.1.bias"] = (out_c,)
        conv(f"decoders.{model_level}.out", 1, emb, 3)
        rows[f"bottleneck.level_blocks.{model_level}.k"] = (bins, emb)
    return rows


def test_state_dict_matches_jukebox_layout():
    table = jukebox_table()
    ours = {k: tuple(v.shape) for k, v in VQVAE().state_dict().items()}
    assert ours == table
    # hand-checked spot values
    assert table["encoders.0.level_blocks.0.model.0.0.weight"] == (64, 1, 4)  # width 32 x multiplier 2
    assert table["encoders.2.level_blocks.2.model.2.weight"] == (64, 32, 3)
    assert table["decoders.1.level_blocks.1.model.2.1.weight"] == (32, 64, 4)
    assert "encoders.0.level_blocks.0.model.0.1.model.7.model.3.bias" in table  # depth 4 x 2 at level 0
    assert "encoders.1.level_blocks.0.model.0.1.model.4.model.1.weight" not in table
    assert len(table) == 669


def test_decoder_dilations_reversed_encoder_increasing():
    m = VQVAE()
    enc = m.encoders[1].level_blocks[0].model[0][1].model
    dec = m.decoders[1].level_blocks[0].model[1][0].model
    assert [b.model[1].dilation[0] for b in enc] == [1, 3, 9, 27]
    assert [b.model[1].dilation[0] for b in dec] == [27, 9, 3, 1]


def _random_state(table, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g) * 0.05 for k, shape in table.items()}


def test_strict_load_bare_and_jukebox_wrapped(tmp_path):
    state = _random_state(jukebox_table())
    torch.save(state, tmp_path / "vqvae_high.pt")  # D2M-GAN: bare state dict
    torch.save({"model": {"module." + k: v for k, v in state.items()}, "step": 7}, tmp_path / "vqvae.pth.tar")
    for name in ("vqvae_high.pt", "vqvae.pth.tar"):
        model = load_vqvae(tmp_path / name)
        loaded = model.state_dict()
        assert set(loaded) == set(state)
        assert all(torch.equal(loaded[k], state[k]) for k in state)
        block = model.bottleneck.level_blocks[2]
        assert block.init and torch.equal(block.k_sum, state["bottleneck.level_blocks.2.k"])
        assert torch.equal(block.k_elem, torch.ones(2048))
    # round trip through our own format keeps weights and EMA state
    save_vqvae(model, tmp_path / "ours.pt")
    again = load_vqvae(tmp_path / "ours.pt")
    assert all(torch.equal(again.state_dict()[k], state[k]) for k in state)


def test_wrong_layout_is_a_user_error(tmp_path):
    state = _random_state(jukebox_table())
    state["bottleneck.level_blocks.0.k"] = torch.zeros(1024, 64)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(UserError, match="bad.pt"):
        load_vqvae(tmp_path / "bad.pt")
    del state["bottleneck.level_blocks.0.k"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(UserError):
        load_vqvae(tmp_path / "missing.pt")


def test_token_counts_and_decoded_lengths_for_a_2s_clip():
    m = VQVAE().eval()
    x = torch.randn(1, 1, 44100) * 0.1
    with torch.no_grad():
        for level, tokens, samples in ((0, 5512, 44096), (1, 1378, 44096), (2, 344, 44032)):
            z, feats = m.encode(x, level)
            assert z.shape == (1, tokens) and feats.shape == (1, 64, tokens)
            assert m.decode(z, level).shape == (1, 1, samples)
    assert m.hop_lengths == [8, 32, 128]


def test_quantise_is_nearest_codebook_row_and_ema_update_formula():
    block = BottleneckBlock(2, 1, mu=0.5, threshold=0.1)
    block.k.copy_(torch.tensor([[0.0], [10.0]]))
    block.restore_k()
    x = torch.tensor([[[1.0, 2.0, 9.0]]])  # (N=1, C=1, T=3)
    assert block.encode(x).tolist() == [[0, 0, 1]]
    idx, q, commit, _ = block(x, update_k=True)
    # commit = mean squared distance to the *old* codebook: (1 + 4 + 1) / 3
    assert commit.item() == pytest.approx(2.0)
    assert q.flatten().tolist() == [0.0, 0.0, 10.0]
    # k_sum = 0.5 * [0, 10] + 0.5 * [3, 9]; k_elem = 0.5 * [1, 1] + 0.5 * [2, 1]
    assert block.k_sum.flatten().tolist() == [1.5, 9.5]
    assert block.k_elem.tolist() == [1.5, 1.0]
    assert block.k.flatten().tolist() == pytest.approx([1.0, 9.5])


def test_straight_through_lookup_gradient():
    m = VQVAE(VQVAEConfig(width=4, depth=1, l_bins=8, emb_width=4, multipliers=(1, 1, 1)))
    m.bottleneck.level_blocks[2].k.normal_()
    x = torch.randn(1, 4, 5, requires_grad=True)
    q = m.lookup(x, 2, straight_through=True)
    (q * torch.arange(5.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(5.0).expand(1, 4, 5))
    assert not m.lookup(x, 2, straight_through=False).requires_grad
    assert torch.allclose(q, m.dequantise(m.bottleneck.level_blocks[2].encode(x), 2))


def test_train_vqvae_overfits_two_clips(tmp_path):
    from d2m_bench.synth.synthetic import make_tiny_dataset
    from d2m_bench.training.runner import read_losses
    from d2m_bench.training.train_vqvae import train_vqvae

    data = make_tiny_dataset(tmp_path / "data", n_train=2, n_test=1)
    out = train_vqvae(data, tmp_path / "run", progress=False,
                      overrides={"size": "tiny", "max_steps": 30, "augment": False, "lr": 1e-3, "lr_warmup": 0})
    rows = read_losses(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(1, 31))
    first, last = rows[0]["loss"], np.mean([r["loss"] for r in rows[-3:]])
    assert last < 0.6 * first, (first, last)
    model = load_vqvae(out["vqvae"])
    assert model.config.width == 8 and model.bottleneck.level_blocks[0].init


def test_vqvae_resume_mid_epoch_gives_identical_steps(tmp_path):
    """5 clips at batch 2 (drop_last): two steps per epoch, so the run stops after step 3 in the
    middle of epoch 1 and must resume with that epoch's second batch, with the same crops."""
    from d2m_bench.synth.synthetic import make_tiny_dataset
    from d2m_bench.training.runner import read_losses
    from d2m_bench.training.train_vqvae import train_vqvae

    data = make_tiny_dataset(tmp_path / "data", n_train=5, n_test=1)
    base = {"size": "tiny", "batch_size": 2, "augment": True, "lr": 1e-3}
    train_vqvae(data, tmp_path / "a", progress=False, overrides={**base, "max_steps": 5})
    train_vqvae(data, tmp_path / "b", progress=False, overrides={**base, "max_steps": 3})
    mid = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert (mid["step"], mid["epoch"], mid["batch_pos"]) == (3, 1, 1)
    out = train_vqvae(data, tmp_path / "b", progress=False, overrides={"max_steps": 5}, resume=True)
    a, b = read_losses(tmp_path / "a"), read_losses(tmp_path / "b")
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5] and out["step"] == 5 and out["epoch"] == 2
    keys = [k for k in a[0] if k != "seconds"]
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]


def test_split_smaller_than_a_batch_fails_before_the_run_folder_is_written(tmp_path):
    from d2m_bench.synth.synthetic import make_tiny_dataset
    from d2m_bench.training.train_vqvae import train_vqvae

    data = make_tiny_dataset(tmp_path / "data", n_train=1, n_test=1)
    with pytest.raises(UserError, match="train split has 1 clips: fewer than one batch of 2"):
        train_vqvae(data, tmp_path / "run", progress=False, overrides={"size": "tiny", "batch_size": 2})
    assert not (tmp_path / "run").exists()  # no config.json or losses.csv of a run that never started


def test_resume_from_a_file_that_is_no_training_checkpoint_is_a_user_error(tmp_path):
    import json

    from d2m_bench.synth.synthetic import make_tiny_dataset
    from d2m_bench.training.train_vqvae import train_vqvae

    data, run = make_tiny_dataset(tmp_path / "data", n_train=2, n_test=1), tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"size": "tiny", "batch_size": 2}))
    for obj in ([1, 2], {"w": torch.zeros(1)}):  # no dict at all (AttributeError before); a bare state dict
        torch.save(obj, run / "checkpoint.pt")
        with pytest.raises(UserError, match="not a d2m-bench VQ-VAE training checkpoint"):
            train_vqvae(data, run, progress=False, resume=True)


def test_vqvae_resume_with_a_model_changing_override_is_one_line_and_writes_nothing(tmp_path):
    from d2m_bench.errors import UserError
    from d2m_bench.synth.synthetic import make_tiny_dataset
    from d2m_bench.training.train_vqvae import train_vqvae

    data = make_tiny_dataset(tmp_path / "data", n_train=2, n_test=1)
    train_vqvae(data, tmp_path / "r", progress=False, overrides={"size": "tiny", "max_steps": 1})
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir() if p.is_file()}
    with pytest.raises(UserError, match=r"built with width=8, the settings now give 16"):
        train_vqvae(data, tmp_path / "r", progress=False, overrides={"width": 16, "max_steps": 2}, resume=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir() if p.is_file()} == before
