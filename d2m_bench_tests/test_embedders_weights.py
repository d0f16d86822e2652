"""`d2m-bench weights download` for files without a pinned hash (the PANNs checkpoints): only a
full SHA-256 the user gives is accepted, a wrong one installs nothing (file:// URLs)."""
import hashlib
import os

import pytest

from d2m_bench.errors import UserError


def _env(tmp_path):
    return {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "HOME": str(tmp_path / "home")}


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "src" / "Cnn14.pth"
    path.parent.mkdir()
    path.write_bytes(b"pretend checkpoint bytes" * 100)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_unpinned_download_needs_full_hash(tmp_path, cli, source):
    path, digest = source
    dest = tmp_path / "torch" / "hub" / "checkpoints" / "Cnn14_mAP=0.431.pth"
    for extra in ([], ["--expect-sha256", digest[:8]]):
        proc = cli("weights", "download", "panns-cnn14", "--url", path.as_uri(), *extra, env=_env(tmp_path))
        assert proc.returncode == 2
        assert "full 64-hex digest" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not dest.exists()


def test_unpinned_download_wrong_hash_installs_nothing(tmp_path, cli, source):
    path, digest = source
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    proc = cli("weights", "download", "panns-cnn14", "--url", path.as_uri(), "--expect-sha256", wrong, "-q",
               env=_env(tmp_path))
    assert proc.returncode == 2 and "not installed" in proc.stderr
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    assert not folder.exists() or list(folder.iterdir()) == []  # no partial file left either


def test_unpinned_download_right_hash(tmp_path, cli, source):
    path, digest = source
    proc = cli("weights", "download", "panns-cnn14-16k", "--url", path.as_uri(), "--expect-sha256", digest.upper(),
               "--dir", tmp_path / "w", "-q", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    dest = tmp_path / "w" / "Cnn14_16k_mAP=0.438.pth"
    assert dest.read_bytes() == path.read_bytes()
    assert f"sha256 {digest}; sha256 verified" in proc.stdout
    listing = cli("weights", "list", "--weights", f"panns-cnn14-16k={dest}", env=_env(tmp_path))
    assert listing.returncode == 0
    assert f"found    {dest}" in listing.stdout and "no published hash pinned" in listing.stdout


def test_weights_assignments():
    from d2m_bench.embedders.weights import parse_assignments

    assert parse_assignments(["panns-cnn14=/a=b.pth"]) == {"panns-cnn14": "/a=b.pth"}
    with pytest.raises(UserError, match="NAME=PATH"):
        parse_assignments(["panns-cnn14"])
    with pytest.raises(UserError, match="unknown weights 'clap'"):
        parse_assignments(["clap=/x"])
