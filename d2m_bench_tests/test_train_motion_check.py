"""Motion dependence: the probe figures, the one warning line of `train` and its record in the
run (what `generate` and eval make of an input-independent model: test_train_d2m.py, end to end)."""

import pytest
import torch
from torch import nn

from d2m_bench.synth.synthetic import make_tiny_dataset
from d2m_bench.training.motion_check import ignores_motion, motion_dependence
from d2m_bench_tests.helpers import save_tiny_vqvae


class _Codebook:
    """Stands in for a VQ-VAE: level 2's block quantises to 4 one-hot rows in 4 dimensions."""

    def __init__(self):
        from d2m_bench.models.bottleneck import BottleneckBlock

        block = BottleneckBlock(4, 4)
        block.k.copy_(torch.eye(4))
        self.bottleneck = nn.Module()
        self.bottleneck.level_blocks = [None, None, block]


class _Picker(nn.Module):
    """Codes = codebook row r at every one of 5 steps; r from the motion's mean (or the visual's)."""

    def __init__(self, source):
        super().__init__()
        self.source = source

    def forward(self, motion, visual, genre=None):
        x = motion if self.source == "motion" else visual
        r = x.flatten(1).mean(1).round().long().clamp(0, 3)
        return torch.eye(4)[r].unsqueeze(2).repeat(1, 1, 5)


def test_probe_figures_of_a_model_that_follows_the_motion_and_one_that_does_not():
    # Clips 0..2 carry motion levels 1, 2, 3 and visual levels 3, 1, 2: the rows they pick are
    # known, so every figure is a count. Rolling the motion gives clip i clip i-1's motion.
    motion = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1).repeat(1, 6, 2)
    visual = torch.tensor([3.0, 1.0, 2.0]).view(3, 1, 1)
    dancing = motion_dependence(_Picker("motion"), _Codebook(), 2, motion, visual)
    assert dancing["tokens_shuffled"] == 1.0  # every clip now picks another row
    assert dancing["tokens_zeroed"] == 1.0  # zero motion picks row 0, used by no clip
    assert dancing["token_spread"] == 1.0 and not ignores_motion(dancing, 0.01)
    deaf = motion_dependence(_Picker("visual"), _Codebook(), 2, motion, visual)
    assert deaf["tokens_shuffled"] == deaf["tokens_zeroed"] == 0.0
    assert deaf["token_spread"] == 1.0  # the clips differ, but not by their dance
    assert ignores_motion(deaf, 0.01)
    one = motion_dependence(_Picker("motion"), _Codebook(), 2, motion[:1], visual[:1])
    assert one["tokens_shuffled"] is None and one["code_spread"] is None and one["tokens_zeroed"] == 1.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("motion")
    data = make_tiny_dataset(root / "data", kind="aistpp", n_train=2, n_test=2)
    save_tiny_vqvae(root / "vqvae.pt")
    return {"data": data, "vqvae": root / "vqvae.pt"}


def test_default_tiny_run_warns_once_and_records_it(tiny, tmp_path, cli):
    run = tmp_path / "run"
    res = cli("train", "d2m-high", "--data", tiny["data"], "--out-dir", run, "--vqvae", tiny["vqvae"], "--size", "tiny",
              "--steps", "3", "-q", "--set", "motion_check_after=2", "--set", "sample_every=0",
              "--set", "save_every=1")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "ignores the dance" in ln]
    assert len(lines) == 1 and lines[0].startswith("d2m-bench: warning: at step 2 "), res.stderr  # the save at 2
    header = (run / "losses.csv").read_text().splitlines()[0].split(",")
    assert {"code_spread", "token_spread", "tokens_shuffled", "tokens_zeroed"} <= set(header)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    check = state["motion_check"]
    assert check["warned_at"] == 2 and check["step"] == 3 and check["input_independent"] is True
    assert check["tokens_shuffled"] == 0.0 and any("ignores the dance" in n for n in state["notes"])


def test_verdict_waits_for_the_warm_up_and_warns_once(capsys):
    from d2m_bench.training.config import D2MTrainConfig, resolve
    from d2m_bench.training.train_d2m import _judge_motion

    cfg = resolve(D2MTrainConfig, {"motion_check_after": 3})
    motion = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1).repeat(1, 6, 2)
    probe = (motion, torch.tensor([3.0, 1.0, 2.0]).view(3, 1, 1), None)
    check, notes = {}, []
    for step in (2, 3, 4):
        _judge_motion(_Picker("visual"), _Codebook(), 2, probe, cfg, step, check, notes)
        if step == 2:
            assert check == {} and notes == []
    assert check["warned_at"] == 3 and check["step"] == 4 and len(notes) == 1
    assert capsys.readouterr().err.count("ignores the dance") == 1
    check, notes = {}, []
    _judge_motion(_Picker("motion"), _Codebook(), 2, probe, cfg, 5, check, notes)
    assert check["input_independent"] is False and check["warned_at"] is None and notes == []
