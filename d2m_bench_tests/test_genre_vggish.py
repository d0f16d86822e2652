"""VGGish: front end and network against the torchvggish package (the reference, tests only),
weights lookup, the missing-weights error, and `d2m-bench weights download`."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from d2m_bench.embedders import vggish as vg
from d2m_bench.embedders.weights import KNOWN, resolve
from d2m_bench.errors import UserError

tv_input = pytest.importorskip("torchvggish.vggish_input")
tv_model = pytest.importorskip("torchvggish.torchvggish")
tv_mel = pytest.importorskip("torchvggish.mel_features")


@pytest.fixture(scope="module")
def reference_weights(tmp_path_factory):
    """A state dict made by torchvggish's own VGG class (random init, nothing downloaded)."""
    torch.manual_seed(123)
    model = tv_model._vgg(postprocess=False).eval()
    path = tmp_path_factory.mktemp("w") / "vggish-random.pth"
    torch.save(model.state_dict(), path)
    return path, model


@pytest.mark.parametrize("n", [15600, 16000, 32000, 44100, 160000])
def test_front_end_matches_torchvggish(n):
    y = np.random.default_rng(n).uniform(-1, 1, n)
    ref = tv_input.waveform_to_examples(y, 16000, return_tensor=False)
    ours = vg.waveform_examples(y)
    assert ours.shape == ref.shape == (len(vg.log_mel(y)) // 96, 96, 64)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6)  # float32 rounding of ~|5| values
    np.testing.assert_allclose(vg.log_mel(y)[: len(ref) * 96].reshape(ref.shape), ref, rtol=0, atol=1e-12)


def test_mel_matrix_and_frame_count():
    np.testing.assert_allclose(vg.mel_weights(), tv_mel.spectrogram_to_mel_matrix(64, 257, 16000, 125.0, 7500.0),
                               rtol=0, atol=1e-15)
    # 2-s clip at 16 kHz: 1 + (32000 - 400) // 160 = 198 frames -> 2 examples of 96.
    assert vg.log_mel(np.zeros(32000)).shape == (198, 64)
    assert vg.waveform_examples(np.zeros(32000)).shape == (2, 96, 64)
    # Silence: log(0 + 0.01) everywhere.
    np.testing.assert_allclose(vg.log_mel(np.zeros(1000)), np.log(0.01))


def test_short_clip_is_padded_to_one_example():
    y = np.random.default_rng(0).normal(size=8000)  # 0.5 s
    ours = vg.waveform_examples(y)
    assert ours.shape == (1, 96, 64)
    padded = np.pad(y, (0, vg.MIN_SAMPLES - len(y)))
    np.testing.assert_allclose(ours, tv_input.waveform_to_examples(padded, 16000, return_tensor=False), atol=2e-6)


def test_state_dict_loads_strictly_and_embeddings_match(reference_weights):
    path, ref = reference_weights
    ours = vg.build_model()
    state = torch.load(path, weights_only=True)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {k: tuple(v.shape) for k, v in state.items()}
    emb = vg.VGGishEmbedder(path, batch_size=3)
    waves = [np.random.default_rng(i).uniform(-0.5, 0.5, n) for i, n in enumerate((32000, 48000, 20000))]
    got = emb.embed_waveforms(waves)  # pre-ReLU; the "relu" layer is torchvggish's own output
    assert [g.shape for g in got] == [(2, 128), (3, 128), (1, 128)]
    with torch.no_grad():
        for y, g in zip(waves, got):
            want = ref(tv_input.waveform_to_examples(y, 16000)).numpy()
            np.testing.assert_allclose(emb.select(g, "relu"), want, rtol=1e-4, atol=1e-6)
            assert np.abs(want).max() > 1e-3  # a real comparison, not of zeros
            assert (g < 0).any() and (want >= 0).all()  # the layers differ
    assert emb.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert emb.meta()["weights_official"] is False


def test_wrong_state_dict_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, bad)
    with pytest.raises(UserError, match="not a VGGish state dict"):
        vg.VGGishEmbedder(bad)


def test_pca_is_the_float_projection(reference_weights, tmp_path):
    path, _ = reference_weights
    rng = np.random.default_rng(5)
    E, m = rng.normal(size=(128, 128)), rng.normal(size=128)
    pca = tmp_path / "pca.pth"
    torch.save({"pca_eigen_vectors": torch.from_numpy(E), "pca_means": torch.from_numpy(m)}, pca)
    emb = vg.VGGishEmbedder(path, pca=pca, postprocess=True)
    x = rng.normal(size=(4, 128))
    # torchvggish's postprocess before its clip/quantise step: E @ (x^T - m), transposed.
    np.testing.assert_allclose(emb.finalize(x), (E @ (x.T - m[:, None])).T, rtol=1e-12)
    assert emb.meta()["postprocess"] == "pca_float"


def test_lookup_order(tmp_path, monkeypatch, reference_weights):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.delenv("D2M_BENCH_VGGISH_WEIGHTS", raising=False)
    hub = tmp_path / "th" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    with pytest.raises(UserError, match="vggish weights not found.*weights download vggish"):
        resolve("vggish")
    (hub / "vggish-10086976.pth").write_bytes(b"x")
    assert resolve("vggish") == hub / "vggish-10086976.pth"
    env = tmp_path / "env.pth"
    env.write_bytes(b"y")
    monkeypatch.setenv("D2M_BENCH_VGGISH_WEIGHTS", str(env))
    assert resolve("vggish") == env
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"z")
    assert resolve("vggish", explicit) == explicit
    # An explicit path that does not exist: named, plus where the file goes and how to get it.
    with pytest.raises(UserError) as err:
        resolve("vggish", tmp_path / "nope.pth")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'nope.pth'}: vggish weights not found") and "\n" not in msg
    assert str(hub) in msg and "d2m-bench weights download vggish" in msg and "mfcc-chroma" in msg


def _env(tmp_path, **extra):
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "torchhome"), **extra)
    env.pop("D2M_BENCH_VGGISH_WEIGHTS", None)
    return env


def test_missing_weights_cli_one_line_exit_2(tmp_path, cli):
    from d2m_bench.synth.synthetic import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "ds", n_train=3, n_test=2)
    pred = shutil.copytree(root / "audio/test", tmp_path / "pred")
    proc = cli("eval", "--pred", pred, "--gt", root / "audio/test", "--data", root, "-q",
               env=_env(tmp_path))
    assert proc.returncode == 2, proc.stderr
    # the predictions are copies of the gt (so eval warns about that): the error is the one other line
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("d2m-bench: warning:")]
    assert len(lines) == 1, proc.stderr
    assert "vggish weights not found" in lines[0]
    assert str(tmp_path / "torchhome" / "hub" / "checkpoints") in lines[0]
    assert "d2m-bench weights download vggish" in lines[0] and "mfcc-chroma" in lines[0]


def test_missing_weights_stop_eval_before_any_onset_is_computed(tmp_path, cli):
    # The events cache is written for every clip whose onsets are detected; after the
    # failure it must hold nothing (the check runs before the beat metrics).
    from d2m_bench.synth.synthetic import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "ds", n_train=3, n_test=2)
    pred = shutil.copytree(root / "audio/test", tmp_path / "pred")
    cache = Path(os.environ["D2M_BENCH_CACHE"])
    proc = cli("eval", "--pred", pred, "--gt", root / "audio/test", "--data", root, "-q",
               "--workers", "1", env=_env(tmp_path))
    assert proc.returncode == 2 and "vggish weights not found" in proc.stderr
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    # Without a genre database the section is skipped, so missing weights do not matter.
    out = tmp_path / "r.json"
    proc = cli("eval", "--pred", pred, "--gt", root / "audio/test", "-q", "--workers", "1",
               "--out", out, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert res["sections"]["genre"]["status"] == "skipped" and "beats_coverage" in res["aggregate"]
    assert [p for p in cache.rglob("*") if p.is_file()] != []  # onsets were computed this time


def test_weights_download_file_url(tmp_path, cli, reference_weights):
    path, _ = reference_weights
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    url = path.resolve().as_uri()
    # An 8-hex prefix guards against a broken download but verifies nothing (32 bits are forgeable).
    proc = cli("weights", "download", "vggish", "--url", url, "--expect-sha256", digest[:8], "--dir", tmp_path / "p",
               env=_env(tmp_path))
    assert proc.returncode == 0 and "sha256 not verified" in proc.stdout, proc.stderr
    # Into the default location (the torch hub cache under $TORCH_HOME), full hash checked.
    proc = cli("weights", "download", "vggish", "--url", url, "--expect-sha256", digest, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    dest = tmp_path / "torchhome" / "hub" / "checkpoints" / KNOWN["vggish"]["filename"]
    assert dest.read_bytes() == path.read_bytes()
    assert digest in proc.stdout and "sha256 verified" in proc.stdout
    # The downloaded file is what eval now finds: the embedder loads it strictly.
    env = _env(tmp_path)
    code = ("from d2m_bench.embedders import get_embedder; e = get_embedder('vggish'); "
            "print(e.weights_path, e.weights_sha256)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(dest), digest]
    # A wrong hash: exit 2, one line, nothing installed, no partial file left.
    other = tmp_path / "other"
    proc = cli("weights", "download", "vggish", "--url", url, "--expect-sha256", "00000000", "--dir", other)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "expected a prefix of 00000000" in proc.stderr
    assert not other.exists() or list(other.iterdir()) == []
    # An unreachable source: exit 2, one line.
    proc = cli("weights", "download", "vggish", "--url", (tmp_path / "absent.pth").as_uri(), "--dir", other)
    assert proc.returncode == 2 and "could not download" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
