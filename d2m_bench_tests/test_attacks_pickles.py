"""Issue 13, failures 2 and 3: no input file runs code.

Each hostile file, when unpickled by plain pickle, creates a marker file (os.system would do
anything else the same way); the tests assert the marker never appears.
"""
import builtins
import hashlib
import os
import pickle

import numpy as np
import pytest
import torch

from d2m_bench.errors import UserError


class _Opens:
    """Unpickling this calls open(marker, "w"): visible proof that the file ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


class _Shell:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


# --- VGGish weights: an 8-hex prefix is not "official" -----------------------------------------

def test_prefix_matching_weights_are_never_unpickled(tmp_path, monkeypatch):
    """A file whose SHA-256 starts with the published prefix (32 bits: found by brute force in
    minutes; here the prefix is set to the file's own, which is what a brute force achieves),
    put where nobody looks twice: the default torch hub location, no option given."""
    from d2m_bench.embedders import get_embedder
    from d2m_bench.embedders.weights import KNOWN

    marker = tmp_path / "ran"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torchhome"))
    monkeypatch.delenv("D2M_BENCH_VGGISH_WEIGHTS", raising=False)
    hub = tmp_path / "torchhome" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    path = hub / KNOWN["vggish"]["filename"]
    torch.save({"features.0.weight": torch.zeros(1), "payload": _Opens(marker)}, path)
    monkeypatch.setitem(KNOWN["vggish"], "sha256_prefix", hashlib.sha256(path.read_bytes()).hexdigest()[:8])
    with pytest.raises(UserError) as err:
        get_embedder("vggish")
    assert not marker.exists(), "the weights file ran code"
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_official_means_the_full_hash():
    from d2m_bench.embedders.weights import KNOWN, is_official
    from d2m_bench.results.result import embedder_key

    full = KNOWN["vggish"]["sha256"]
    assert len(full) == 64 and full.startswith(KNOWN["vggish"]["sha256_prefix"])
    forged = full[:8] + "0" * 56
    assert is_official("vggish", full) and not is_official("vggish", forged)
    assert embedder_key({"embedder": "vggish", "weights_sha256": forged}) == "vggish:" + forged[:12]


def test_pca_arrays_load_without_unpickling_code(tmp_path):
    """The PCA file holds pickled numpy arrays: read with weights_only=True and an allow-list."""
    from d2m_bench.embedders.weights import load_weights

    good = tmp_path / "pca.pth"
    torch.save({"pca_eigen_vectors": np.eye(128), "pca_means": np.arange(128.0).reshape(128, 1)}, good)
    params = load_weights(good)
    np.testing.assert_array_equal(params["pca_means"][:, 0], np.arange(128.0))
    bad = tmp_path / "bad.pth"
    torch.save({"pca_means": np.zeros(3), "x": _Opens(tmp_path / "ran")}, bad)
    with pytest.raises(UserError, match="refusing to unpickle"):
        load_weights(bad)
    assert not (tmp_path / "ran").exists()


# --- AIST++ annotation pickles ------------------------------------------------------------------

def _aistpp_like():
    """What an AIST++ motion file holds (numpy 1 wrote smpl_loss as a numpy scalar)."""
    rng = np.random.default_rng(0)
    return {"smpl_poses": rng.normal(size=(10, 72)).astype(np.float32), "smpl_scaling": np.array([93.0]),
            "smpl_trans": rng.normal(size=(10, 3)), "smpl_loss": np.float64(1.5), "names": ["a", "b"],
            "meta": {"fps": 60, "ok": True, "shape": (10, 72)}}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_annotation_pickles_of_every_protocol_load(tmp_path, protocol):
    from d2m_bench.data.aistpp import load_pickle

    want = _aistpp_like()
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(want, protocol=protocol))
    got = load_pickle(path)
    assert sorted(got) == sorted(want) and got["smpl_loss"] == 1.5 and got["meta"] == want["meta"]
    np.testing.assert_array_equal(got["smpl_poses"], want["smpl_poses"])


@pytest.mark.parametrize("payload,name", [(_Opens, "io.open"), (_Shell, "posix.system")])
def test_hostile_annotation_pickle_is_refused_naming_the_global(tmp_path, payload, name):
    from d2m_bench.data.aistpp import load_pickle

    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"smpl_poses": payload(marker)}))
    with pytest.raises(UserError) as err:
        load_pickle(path)
    assert not marker.exists(), "the annotation file ran code"
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and f"'{name}'" in msg


@pytest.mark.parametrize("attack", ["code", "dtype-swap", "bytearray-bomb"])
def test_data_build_with_a_hostile_pickle(tmp_path, cli, attack):
    """Issue 13 (code) and issue 24 rows 1 and 9: a 372-byte pickle using only numpy.dtype,
    _reconstruct and ndarray turned raw file bytes into a pointer (rc 139); a few bytes naming
    bytearray(8 GiB) allocated it. Each is now one line, exit 2."""
    from d2m_bench_tests.helpers import bytearray_bomb_pickle, dtype_swap_pickle

    raw = tmp_path / "raw"
    assert cli("data", "synth", "aistpp", raw).returncode == 0
    victim = sorted((raw / "annotations" / "motions").glob("*.pkl"))[0]
    marker = tmp_path / "ran"
    victim.write_bytes({"code": lambda: pickle.dumps({"smpl_poses": _Shell(marker)}),
                        "dtype-swap": dtype_swap_pickle, "bytearray-bomb": bytearray_bomb_pickle}[attack]())
    proc = cli("data", "build", "aistpp", "--annotations", raw / "annotations", "--music", raw / "music",
               "--videos", raw / "videos", "--out-dir", tmp_path / "ds", "--visual", "none", "--strict")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert str(victim) in lines[0]
    assert {"code": "'posix.system'", "dtype-swap": "only plain numeric and bool dtypes",
            "bytearray-bomb": "8,589,934,592 bytes"}[attack] in lines[0]
    assert not marker.exists()


_LOAD_EVERY_WAY = """
import sys
from d2m_bench.errors import UserError
from d2m_bench.training.checkpoint import torch_load
from d2m_bench.embedders.weights import load_weights
from d2m_bench.models.vqvae import load_vqvae
for name, load in [("weights", load_weights), ("checkpoint", torch_load),
                   ("trusted", lambda p: torch_load(p, trust=True)),
                   ("vqvae", lambda p: load_vqvae(p, trust=True))]:
    try:
        load(sys.argv[1])
        print(name, "LOADED")
    except UserError as exc:
        print(name, "REFUSED", exc)
"""


@pytest.mark.parametrize("attack", ["dtype-swap", "bytearray-bomb"])
def test_hostile_torch_files_are_refused_by_every_loader(tmp_path, attack):
    """Rows 1 and 9 in a torch zip: weights (VGGish, CLAP, PANNs), checkpoints with and without
    --trust-checkpoint, and the VQ-VAE reader of import/train/generate. Run in a child under a
    6 GiB address-space limit: before, the dtype swap was SIGSEGV and the bomb a MemoryError."""
    from d2m_bench_tests.helpers import bytearray_bomb_pickle, dtype_swap_pickle, run_python, torch_file_with_pickle

    path = torch_file_with_pickle(tmp_path / "evil.pt",
                                  {"dtype-swap": dtype_swap_pickle, "bytearray-bomb": bytearray_bomb_pickle}[attack]())
    proc = run_python(_LOAD_EVERY_WAY, path, limit_bytes=6 * 2**30)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4 and all(" REFUSED " in ln and str(path) in ln for ln in lines), proc.stdout
    want = {"dtype-swap": "only plain numeric and bool dtypes", "bytearray-bomb": "8,589,934,592 bytes"}[attack]
    assert all(want in ln for ln in lines), proc.stdout


# --- --trust-checkpoint: stubs for what is missing AND for what is installed -----------------------

def test_trusted_checkpoint_cannot_call_installed_functions(tmp_path):
    from d2m_bench.training.checkpoint import MissingClass, torch_load

    marker = tmp_path / "ran"
    path = tmp_path / "vqvae.pth.tar"
    torch.save({"model": {"w": torch.arange(3.0)}, "hps": _Shell(marker), "log": _Opens(marker),
                "arr": np.arange(4)}, path)
    obj = torch_load(path, trust=True)
    assert not marker.exists(), "--trust-checkpoint ran os.system"
    assert isinstance(obj["hps"], MissingClass) and obj["hps"].missing == "posix.system"
    assert isinstance(obj["log"], MissingClass)
    assert torch.equal(obj["model"]["w"], torch.arange(3.0)) and obj["arr"].tolist() == [0, 1, 2, 3]


def test_random_bytes_checkpoint_gets_no_trust_advice(tmp_path):
    from d2m_bench.training.checkpoint import torch_load

    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    for trust in (False, True):
        with pytest.raises(UserError) as err:
            torch_load(path, trust=trust)
        assert "--trust-checkpoint" not in str(err.value) and "\n" not in str(err.value)
