"""`d2m-bench import d2m-gan / vqvae` judged by files that a port of the upstream code writes.

The "released" files here come from d2m_bench_tests/upstream_d2m.py: upstream's modules (in
upstream's registration order, legacy weight norm), one step of upstream's training loop, and
upstream's save step. The importer must load them, resume the optimisers so that the next step
equals upstream's next step, and generate the audio that upstream's generate script makes.
"""
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from d2m_bench.errors import UserError
from d2m_bench.models.bottleneck import BottleneckBlock
from d2m_bench.models.vqvae import VQVAE, VQVAEConfig, save_vqvae
from d2m_bench.synth.synthetic import make_tiny_dataset
from d2m_bench.training.data import ClipDataset
from d2m_bench_tests import upstream_d2m as up

DIV = 32  # channels / 32: tiny, and every length rule of the paper model


def test_old_weight_norm_api_writes_the_names_the_importer_reads():
    # The names come from torch's own legacy weight_norm, the API torch 1.7 code used.
    old = torch.nn.utils.weight_norm(nn.Conv1d(2, 3, 5))
    assert set(old.state_dict()) == {"bias", "weight_g", "weight_v"}
    from d2m_bench.training.released import convert_weight_norm

    new = torch.nn.utils.parametrizations.weight_norm(nn.Conv1d(2, 3, 5))
    new.load_state_dict(convert_weight_norm(old.state_dict()))
    x = torch.randn(1, 2, 9)
    assert torch.allclose(new(x), old(x), atol=1e-6)


def _stack(ds):
    items = [ds[i] for i in range(len(ds))]
    return {k: torch.stack([it[k] for it in items]) for k in ("audio", "motion", "visual", "genre")}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("upstream")
    data = make_tiny_dataset(root / "data", kind="aistpp", n_train=2, n_test=2)
    torch.manual_seed(1)
    # Jukebox's hops (8 / 32 / 128) and 2048 x 64 codebooks, narrow convolutions: the released
    # vqvae_*.pt layout at full width costs seconds per clip (test_import_vqvae reads one).
    vq = VQVAE(VQVAEConfig(width=8, depth=1, multipliers=(1, 1, 1))).eval()
    for block in vq.bottleneck.level_blocks:
        block.k.normal_(0, 0.05)
    save_vqvae(vq, root / "vqvae.pt")
    return {"root": root, "data": data, "vq": vq}


_made = {}


def _level(shared, level):
    """Upstream's models after one upstream training step, saved by upstream's save step (built once)."""
    if level not in _made:
        folder = shared["root"] / level
        folder.mkdir()
        m = up.build(level, DIV, seed=3)
        up.train_step(m, shared["vq"], _stack(ClipDataset(shared["data"], "train")))
        up.save(m, folder)
        assert any(k.endswith("weight_g") for k in torch.load(folder / "netG.pt", weights_only=True))
        _made[level] = {"folder": folder, "models": m, "level": level, **shared}
    return _made[level]


@pytest.fixture(params=["high", "low"])
def released(request, shared):
    return _level(shared, request.param)


def _args(r, out, *extra, vqvae=None):
    f = r["folder"]
    return ("import", "d2m-gan", "--mencoder", f / "mencoder.pt", "--netg", f / "netG.pt",
            "--vqvae", vqvae or r["root"] / "vqvae.pt", "--level", r["level"], "--dataset", "aistpp", "--out-dir", out, *extra)


def _named_moments(opt, named):
    """name -> (exp_avg, exp_avg_sq) of an Adam state dict whose i-th parameter is named[i]."""
    sd = opt if isinstance(opt, dict) else opt.state_dict()
    ids = sd["param_groups"][0]["params"]
    return {n: (sd["state"][i]["exp_avg"], sd["state"][i]["exp_avg_sq"]) for n, i in zip(named, ids)
            if i in sd["state"]}


def _upstream_g_names(m):
    return ([f"mencoder.{n}" for n in up.upstream_names(dict(m["mencoder"].named_parameters()))]
            + [f"generator.{n}" for n in up.upstream_names(dict(m["netG"].named_parameters()))])


def test_resumed_import_takes_the_step_upstream_takes(released, tmp_path, monkeypatch):
    from d2m_bench.models.generator import D2MGenerator, GeneratorConfig
    from d2m_bench.training import train_d2m as td

    from d2m_bench.training.released import import_d2m_gan

    r, run, f = released, tmp_path / "run", released["folder"]
    # In process (the CLI path: the generate test); released code: "optG parameter 2 has shape (1024, 786) ..."
    summary = import_d2m_gan(mencoder=f / "mencoder.pt", netg=f / "netG.pt", vqvae=r["root"] / "vqvae.pt",
                             level=r["level"], dataset="aistpp", out=run, netd=f / "netD.pt", optg=f / "optG.pt",
                             optd=f / "optD.pt")
    assert summary["fresh"] == []
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    G = D2MGenerator(GeneratorConfig.from_dict(state["generator_config"]))
    ours = [n for n, _ in G.named_parameters()]
    want = _named_moments(r["models"]["optG"], _upstream_g_names(r["models"]))
    got = _named_moments(state["optG"], ours)
    assert set(got) == set(want) == set(ours)
    assert all(torch.equal(got[n][0], want[n][0]) and torch.equal(got[n][1], want[n][1]) for n in ours)

    # One step of d2m-bench's trainer from the imported run, and one of upstream's on the same batch.
    seen = []

    def capture(batch, **kw):
        seen.append({k: v.clone() for k, v in batch.items()})
        return real(batch, **kw)

    real = td.train_step
    monkeypatch.setattr(td, "train_step", capture)
    td.train_d2m(r["data"], run, overrides={"batch_size": 2, "max_steps": 1, "sample_every": 0}, resume=True,
                 progress=False)
    assert len(seen) == 1
    m = up.load(r["level"], DIV, r["folder"])
    up.train_step(m, r["vq"], seen[0])
    after = torch.load(run / "checkpoint.pt", weights_only=True)
    ref = {**{f"mencoder.{k}": v for k, v in up.upstream_names(m["mencoder"].state_dict()).items()},
           **{f"generator.{k}": v for k, v in up.upstream_names(m["netG"].state_dict()).items()}}
    d_ref = up.upstream_names(m["netD"].state_dict())
    # Bit for bit: D sees fake and real in two forwards as upstream does. Were a moment keyed to
    # the wrong parameter, or the batch concatenated, Adam would move some weights by ~lr apart.
    assert set(ref) == set(after["generator"]) and set(d_ref) == set(after["discriminator"])
    assert [k for k in ref if not torch.equal(after["generator"][k], ref[k])] == []
    assert [k for k in d_ref if not torch.equal(after["discriminator"][k], d_ref[k])] == []
    assert any(not torch.equal(ref[k], v) for k, v in
               up.upstream_names(r["models"]["netG"].state_dict()).items() for k in [f"generator.{k}"])
    moved = _named_moments(after["optG"], ours)
    want = _named_moments(m["optG"], _upstream_g_names(m))
    assert all(torch.equal(moved[n][0], want[n][0]) and torch.equal(moved[n][1], want[n][1]) for n in ours)
    assert after["optG"]["state"][0]["step"] == 2  # upstream's step + ours


def test_imported_model_generates_upstream_audio_bit_for_bit(released, tmp_path, cli):
    r, run, out, f = released, tmp_path / "run", tmp_path / "gen", released["folder"]
    res = cli(*_args(r, run, "--netd", f / "netD.pt", "--optg", f / "optG.pt", "--optd", f / "optD.pt"))
    assert res.returncode == 0, res.stderr
    res = cli("generate", "--checkpoint", run / "checkpoint.pt", "--data", r["data"], "--out-dir", out, "--no-denoise", "-q")
    assert res.returncode == 0, res.stderr
    ds = ClipDataset(r["data"], "test")
    for i in range(len(ds)):
        _, _, wav = up.generate_clip(r["models"], r["vq"], ds[i])
        path = tmp_path / f"upstream_{i}.wav"
        sf.write(str(path), np.clip(wav, -1, 1), 22050, subtype="PCM_16")
        want, _ = sf.read(str(path), dtype="int16")
        got, sr = sf.read(str(out / "generated" / f"{ds.segments[i].segment_id}.wav"), dtype="int16")
        assert sr == 22050 and len(got) == (44032 if r["level"] == "high" else 44096)
        assert np.array_equal(got, want) and np.abs(want).max() > 30
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["denoise"]["applied"] is False and prov["level"] == r["level"]


@pytest.mark.parametrize("n", [1, 3])
def test_lookup_equals_jukebox_on_near_ties(n):
    # The old flatten reshaped a transposed view at batch 1, so the distance matmul rounded
    # differently from Jukebox's and 4 of 1378 near-ties flipped.
    torch.manual_seed(0)
    k = torch.randn(2048, 64) * 0.05
    rows, ties = [], []
    for j in range(n):
        x, a, b = up.near_tie_codes(k, 1378, seed=j)
        gap = up.relative_gap(x, k)
        rows.append(x)
        ties.append(gap < 1e-7)
    x = torch.cat(rows)
    assert sum(int(t.sum()) for t in ties) >= 500 * n  # most rows are ties closer than 1e-7 relative
    block = BottleneckBlock(2048, 64)
    block.k.copy_(k)
    want = up.JukeboxBottleneckBlock(k).encode(x)
    assert torch.equal(block.encode(x), want)
    assert torch.equal(block.decode(block.encode(x)), up.JukeboxBottleneckBlock(k).decode(want))


def test_import_without_discriminator_or_optimisers_records_what_is_fresh(shared, tmp_path, cli):
    r = _level(shared, "high")
    res = cli(*_args(r, tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["imported"]["fresh"] == ["netD", "optG", "optD"] and state["optG"] is None and state["rng"] is None
    assert state["config"]["d_width"] == 1.0  # paper-size discriminator when none is given
    again = cli(*_args(r, tmp_path / "run"))
    assert again.returncode == 2 and "already holds a checkpoint.pt" in again.stderr


def _other_width_vqvae(path):
    # The width of a `train vqvae --size tiny` codebook.
    save_vqvae(VQVAE(VQVAEConfig(width=8, depth=1, l_bins=64, emb_width=16, multipliers=(1, 1, 1))), path)
    return path


def test_files_that_do_not_fit_are_one_line_errors_naming_both_files(released, tmp_path, cli):
    r = released
    narrow = _other_width_vqvae(tmp_path / "vq32.pt")
    cases = [(_args(r, tmp_path / "a", vqvae=narrow), ["netG.pt", "vq32.pt", "64-channel codes", "16-wide"])]
    other = "low" if r["level"] == "high" else "high"
    swapped = list(_args(r, tmp_path / "b"))
    swapped[swapped.index("--level") + 1] = other
    cases.append((swapped, ["netG.pt", f"{r['level']}-level generator", f"--level is {other}"]))
    for args, words in cases:
        res = cli(*args)
        assert res.returncode == 2, res.stderr
        line = res.stderr.strip()
        assert "\n" not in line and "Traceback" not in line and all(w in line for w in words), line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("swap,message", [("dataset", "genre embedding"), ("netg", "not a generator state dict")])
def test_mismatched_released_files_are_one_line_errors_that_write_nothing(shared, tmp_path, swap, message):
    from d2m_bench.training.released import import_d2m_gan

    r = _level(shared, "high")
    kw = dict(mencoder=r["folder"] / "mencoder.pt", netg=r["folder"] / "netG.pt", vqvae=r["root"] / "vqvae.pt",
              level="high", dataset="aistpp", out=tmp_path / "run")
    if swap == "dataset":
        kw["dataset"] = "tiktok"
    else:
        torch.save({"not": "tensors"}, tmp_path / "junk.pt")
        kw["netg"] = tmp_path / "junk.pt"
    with pytest.raises(UserError, match=message) as err:
        import_d2m_gan(**kw)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_generate_refuses_data_and_codecs_that_do_not_fit_before_writing(shared, tmp_path, cli):
    r, run = _level(shared, "high"), tmp_path / "run"
    assert cli(*_args(r, run)).returncode == 0
    narrow_data = make_tiny_dataset(tmp_path / "d64", kind="aistpp", n_train=1, n_test=1, visual_dim=64)
    res = cli("generate", "--checkpoint", run / "checkpoint.pt", "--data", narrow_data, "--out-dir", tmp_path / "g1",
              "--no-denoise", "-q")
    line = res.stderr.strip()
    assert res.returncode == 2 and "\n" not in line, line  # released code: a matmul traceback, exit 1
    assert all(w in line for w in ("checkpoint.pt", "d64", "2048", "64")), line
    narrow = _other_width_vqvae(tmp_path / "vq32.pt")
    res = cli("generate", "--checkpoint", run / "checkpoint.pt", "--data", r["data"], "--out-dir", tmp_path / "g2",
              "--vqvae", narrow, "--no-denoise", "-q")
    line = res.stderr.strip()
    assert res.returncode == 2 and "\n" not in line, line
    assert all(w in line for w in ("checkpoint.pt", "vq32.pt", "(64, ", "(16, ")), line
    assert not (tmp_path / "g1").exists() and not (tmp_path / "g2").exists()


def test_import_vqvae_then_train_accepts_it(tmp_path, cli):
    torch.manual_seed(1)
    jukebox = VQVAE()  # Jukebox `vqvae` hparams, a bare state dict: what vqvae_high.pt / vqvae_low.pt hold
    torch.save(jukebox.state_dict(), tmp_path / "vqvae_high.pt")
    res = cli("import", "vqvae", tmp_path / "vqvae_high.pt", "--out", tmp_path / "vq.pt")
    assert res.returncode == 0, res.stderr
    from d2m_bench.models.vqvae import load_vqvae

    model = load_vqvae(tmp_path / "vq.pt")
    ref = jukebox.state_dict()
    assert all(torch.equal(model.state_dict()[k], ref[k]) for k in ref)
    assert torch.load(tmp_path / "vq.pt", weights_only=True)["sha256"]
    res = cli("import", "vqvae", tmp_path / "vq.pt", "--out", tmp_path / "vq.pt")
    assert res.returncode == 2 and "is the input file" in res.stderr
