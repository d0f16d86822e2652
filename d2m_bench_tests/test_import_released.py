"""`d2m-bench import d2m-gan / vqvae`: released weights in the upstream layout -> generate and --resume."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from d2m_bench.errors import UserError
from d2m_bench.models.discriminator import MultiScaleDiscriminator
from d2m_bench.models.generator import D2MGenerator, GeneratorConfig
from d2m_bench.models.vqvae import VQVAE
from d2m_bench.synth.synthetic import make_tiny_dataset


def upstream_layout(state: dict) -> dict:
    """A state dict as torch 1.7 wrote it for the released modules: weight-normed convs hold
    ``weight_g`` / ``weight_v`` (the old ``torch.nn.utils.weight_norm`` names) instead of
    torch 2's parametrization entries; everything else is named alike."""
    out = {}
    for key, value in state.items():
        for new, old in ((".parametrizations.weight.original0", ".weight_g"),
                         (".parametrizations.weight.original1", ".weight_v")):
            key = key.replace(new, old)
        out[key] = value.clone()
    return out


def test_old_weight_norm_api_writes_the_names_the_importer_reads():
    # The names come from torch's own legacy weight_norm, the API torch 1.7 code used.
    old = torch.nn.utils.weight_norm(nn.Conv1d(2, 3, 5))
    assert set(old.state_dict()) == {"bias", "weight_g", "weight_v"}
    from d2m_bench.training.released import convert_weight_norm

    new = torch.nn.utils.parametrizations.weight_norm(nn.Conv1d(2, 3, 5))
    new.load_state_dict(convert_weight_norm(old.state_dict()))
    x = torch.randn(1, 2, 9)
    assert torch.allclose(new(x), old(x), atol=1e-6)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Released-style files of a narrow AIST++ high model: mencoder.pt, netG.pt, netD.pt, optG.pt,
    optD.pt in the upstream layout, and a paper-size Jukebox VQ-VAE as a bare state dict (vqvae_high.pt)."""
    root = tmp_path_factory.mktemp("released")
    data = make_tiny_dataset(root / "data", kind="aistpp", n_train=2, n_test=2)
    torch.manual_seed(1)
    vq = VQVAE()  # Jukebox `vqvae` hparams: what vqvae_high.pt / vqvae_low.pt hold
    for block in vq.bottleneck.level_blocks:
        block.k.normal_(0, 0.05)
    torch.save(vq.state_dict(), root / "vqvae_high.pt")
    cfg = GeneratorConfig(level="high", width=1 / 32, motion_len=64, motion_feat=64, genre_dim=16, res_blocks=1,
                          emb_width=64, code_len=344)
    G = D2MGenerator(cfg)
    D = MultiScaleDiscriminator(width=1 / 16)
    torch.save(upstream_layout(G.mencoder.state_dict()), root / "mencoder.pt")
    torch.save(upstream_layout(G.generator.state_dict()), root / "netG.pt")
    torch.save(upstream_layout(D.state_dict()), root / "netD.pt")
    # Upstream: Adam(list(mencoder.parameters()) + list(encoder.parameters())), one step taken.
    opt_g = torch.optim.Adam(list(G.mencoder.parameters()) + list(G.generator.parameters()), lr=1e-4, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.9))
    for p in G.parameters():
        p.grad = torch.ones_like(p)
    for p in D.parameters():
        p.grad = torch.ones_like(p)
    opt_g.step()
    opt_d.step()
    torch.save(upstream_layout(G.mencoder.state_dict()), root / "mencoder.pt")
    torch.save(upstream_layout(G.generator.state_dict()), root / "netG.pt")
    torch.save(upstream_layout(D.state_dict()), root / "netD.pt")
    torch.save(opt_g.state_dict(), root / "optG.pt")
    torch.save(opt_d.state_dict(), root / "optD.pt")
    assert any(k.endswith("weight_g") for k in torch.load(root / "netG.pt", weights_only=True))
    return {"root": root, "data": data, "G": G.eval(), "D": D, "vq": vq}


def _args(r, out, *extra):
    root = r["root"]
    return ("import", "d2m-gan", "--mencoder", root / "mencoder.pt", "--netg", root / "netG.pt",
            "--vqvae", root / "vqvae_high.pt", "--level", "high", "--dataset", "aistpp", "--out-dir", out, *extra)


def test_import_then_generate_reproduces_the_released_model_and_resumes(released, tmp_path, cli):
    r, run = released, tmp_path / "run"
    res = cli(*_args(r, run, "--netd", r["root"] / "netD.pt", "--optg", r["root"] / "optG.pt",
                     "--optd", r["root"] / "optD.pt", "--step", "7000"))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["fresh"] == [] and summary["generator_parameters"] == sum(p.numel() for p in r["G"].parameters())
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 7000 and state["config"]["g_width"] == 1 / 32 and state["config"]["d_width"] == 1 / 16
    assert state["imported"]["netG"]["sha256"] and state["config"]["straight_through"] is False
    # Generated audio = the released model's codes, looked up and decoded by the released VQ-VAE.
    out = tmp_path / "gen"
    res = cli("generate", "--checkpoint", run / "checkpoint.pt", "--data", r["data"], "--out-dir", out, "--limit", "1",
              "--no-denoise", "-q")
    assert res.returncode == 0, res.stderr
    from d2m_bench.training.data import ClipDataset

    item = ClipDataset(r["data"], "test")[0]
    with torch.no_grad():
        codes = r["G"](item["motion"][None], item["visual"][None], item["genre"].view(1))
        q = r["vq"].bottleneck.level_blocks[2]
        want = r["vq"].decoders[2](q.decode(q.encode(codes))).reshape(-1).clamp(-1, 1).numpy()
    sid = ClipDataset(r["data"], "test").segments[0].segment_id
    got, sr = sf.read(str(out / "generated" / f"{sid}.wav"), dtype="float32")
    assert sr == 22050 and len(got) == 44032
    assert np.abs(got - want).max() <= 1 / 32768 + 1e-6 and np.abs(want).max() > 1e-3  # PCM_16 rounding only
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["denoise"]["applied"] is False and prov["step"] == 7000
    # ... and train --resume continues from the imported step with the imported optimiser state.
    res = cli("train", "d2m-high", "--data", r["data"], "--out-dir", run, "--resume", "--steps", "7001", "--batch-size", "2", "-q",
              "--set", "sample_every=0")
    assert res.returncode == 0, res.stderr
    after = torch.load(run / "checkpoint.pt", weights_only=True)
    assert after["step"] == 7001 and after["optG"]["state"][0]["step"] == 2  # upstream's 1 step + ours


def test_import_without_discriminator_or_optimisers_records_what_is_fresh(released, tmp_path, cli):
    res = cli(*_args(released, tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["imported"]["fresh"] == ["netD", "optG", "optD"] and state["optG"] is None and state["rng"] is None
    assert state["config"]["d_width"] == 1.0  # paper-size discriminator when none is given
    again = cli(*_args(released, tmp_path / "run"))
    assert again.returncode == 2 and "already holds a checkpoint.pt" in again.stderr


@pytest.mark.parametrize("swap,message", [
    ("level", "high-level generator weights do not fit"),
    ("dataset", "genre embedding"),
    ("netg", "not a generator state dict"),
])
def test_mismatched_released_files_are_one_line_errors_that_write_nothing(released, tmp_path, swap, message):
    from d2m_bench.training.released import import_d2m_gan

    root = released["root"]
    kw = dict(mencoder=root / "mencoder.pt", netg=root / "netG.pt", vqvae=root / "vqvae_high.pt", level="high",
              dataset="aistpp", out=tmp_path / "run")
    if swap == "level":  # a generator of other sizes than the motion encoder's run
        other = GeneratorConfig(level="high", width=1 / 16, motion_len=64, motion_feat=64, genre_dim=16,
                                res_blocks=1, emb_width=32, code_len=344)
        torch.save(upstream_layout(D2MGenerator(other).generator.state_dict()), tmp_path / "netG_other.pt")
        kw["netg"] = tmp_path / "netG_other.pt"
    elif swap == "dataset":
        kw["dataset"] = "tiktok"
    else:
        torch.save({"not": "tensors"}, tmp_path / "junk.pt")
        kw["netg"] = tmp_path / "junk.pt"
    with pytest.raises(UserError, match=message) as err:
        import_d2m_gan(**kw)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_import_vqvae_then_train_accepts_it(released, tmp_path, cli):
    res = cli("import", "vqvae", released["root"] / "vqvae_high.pt", "--out", tmp_path / "vq.pt")
    assert res.returncode == 0, res.stderr
    from d2m_bench.models.vqvae import load_vqvae

    model = load_vqvae(tmp_path / "vq.pt")
    ref = released["vq"].state_dict()
    assert all(torch.equal(model.state_dict()[k], ref[k]) for k in ref)
    assert torch.load(tmp_path / "vq.pt", weights_only=True)["sha256"]
    res = cli("import", "vqvae", tmp_path / "vq.pt", "--out", tmp_path / "vq.pt")
    assert res.returncode == 2 and "is the input file" in res.stderr
