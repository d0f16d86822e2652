"""Trainer plumbing without a GPU or real files: CUDA device choice, loading pickles that reference missing code."""
import sys
import types

import pytest
import torch

from d2m_bench.errors import UserError
from d2m_bench.models.vqvae import VQVAE, VQVAEConfig, load_vqvae
from d2m_bench.training import runner
from d2m_bench.training.checkpoint import MissingClass, torch_load


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend two CUDA devices exist; record what set_device receives.

    The fake set_device resolves its argument with torch's own index rule, which raises
    ValueError for an index-less torch.device("cuda") exactly like the real call.
    """
    from torch.cuda._utils import _get_device_index

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(_get_device_index(d)))
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    return calls


@pytest.mark.parametrize("asked,index", [("auto", 0), ("cuda", 0), ("cuda:1", 1)])
def test_single_process_cuda_device_is_indexed(fake_cuda, asked, index):
    ctx = runner.setup(asked)
    assert ctx.device == torch.device("cuda", index) and ctx.world == 1
    assert fake_cuda == [index]


def test_cuda_follows_local_rank_and_bad_devices_are_user_errors(fake_cuda, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")  # as torchrun sets it for the second process of a node
    assert runner.setup("cuda").device == torch.device("cuda", 1) and fake_cuda == [1]
    assert runner.pick_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="only 2 CUDA"):
        runner.pick_device("cuda:2")
    with pytest.raises(UserError, match="unknown device 'gpu'"):
        runner.pick_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runner.pick_device("auto") == torch.device("cpu")
    with pytest.raises(UserError, match="no CUDA"):
        runner.pick_device("cuda")


TINY = VQVAEConfig(width=4, depth=1, l_bins=8, emb_width=4, multipliers=(1, 1, 1))


@pytest.fixture
def foreign_checkpoint(tmp_path, monkeypatch):
    """A Jukebox-style file whose pickle references classes of a package that is then uninstalled."""
    pkg, mod = types.ModuleType("fakejukebox"), types.ModuleType("fakejukebox.hparams")
    pkg.hparams = mod

    class Hyperparams(dict):  # jukebox.hparams.Hyperparams is a dict subclass
        pass

    class Logger:
        def __init__(self):
            self.iters = 7

    for cls in (Hyperparams, Logger):
        cls.__module__, cls.__qualname__ = "fakejukebox.hparams", cls.__name__
        setattr(mod, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, "fakejukebox", pkg)
    monkeypatch.setitem(sys.modules, "fakejukebox.hparams", mod)
    torch.manual_seed(0)
    state = VQVAE(TINY).state_dict()
    torch.save({"hps": Hyperparams(sr=44100, levels=3), "logger": Logger(), "step": 7,
                "model": {"module." + k: v for k, v in state.items()}}, tmp_path / "vqvae.pth.tar")
    torch.save(Logger(), tmp_path / "object.pt")
    monkeypatch.delitem(sys.modules, "fakejukebox.hparams")
    monkeypatch.delitem(sys.modules, "fakejukebox")
    return tmp_path, state


def test_trusted_load_stubs_classes_of_missing_modules(foreign_checkpoint):
    folder, state = foreign_checkpoint
    obj = torch_load(folder / "vqvae.pth.tar", trust=True)
    assert isinstance(obj["hps"], MissingClass) and obj["hps"].missing == "fakejukebox.hparams.Hyperparams"
    assert obj["hps"].items == {"sr": 44100, "levels": 3}  # dict contents kept, class code never ran
    assert obj["logger"].state == {"iters": 7} and obj["step"] == 7
    model = load_vqvae(folder / "vqvae.pth.tar", config=TINY, trust=True)
    assert all(torch.equal(model.state_dict()[k], state[k]) for k in state)


def test_untrusted_or_unusable_foreign_pickles_are_one_line_errors(foreign_checkpoint, cli):
    from d2m_bench.synth.synthetic import make_tiny_dataset

    folder, _ = foreign_checkpoint
    with pytest.raises(UserError, match="--trust-checkpoint") as err:
        torch_load(folder / "vqvae.pth.tar")
    assert "\n" not in str(err.value) and "fakejukebox.hparams.Hyperparams" in str(err.value)
    with pytest.raises(UserError, match="no state dict inside"):
        load_vqvae(folder / "object.pt", config=TINY, trust=True)
    # Through the CLI: exit 2 and one line, not a ModuleNotFoundError traceback.
    data = make_tiny_dataset(folder / "data", n_train=2, n_test=1)
    r = cli("train", "d2m-high", "--data", data, "--out-dir", folder / "run", "--vqvae", folder / "object.pt",
            "--trust-checkpoint", "--size", "tiny", "--quiet")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"d2m-bench: error: {folder / 'object.pt'}: not a VQ-VAE checkpoint (no state dict inside)"]
    assert not (folder / "run").exists()  # nothing written before the models are known to load
