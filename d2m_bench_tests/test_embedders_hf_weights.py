"""Hugging Face repository weights (MERT, laion_clap's tokenizers and text model): found offline
in an explicit folder, the environment variable or the hub cache; identified by a folder digest
computed here by hand; refused in one line when incomplete; downloads pinned by a revision or a
folder digest, and a mismatching snapshot is removed."""
import hashlib

import pytest

from d2m_bench.embedders import weights
from d2m_bench.errors import UserError
from d2m_bench_tests.helpers import write_hf_snapshot

pytest.importorskip("huggingface_hub", reason="huggingface_hub not installed (pip install 'd2m-bench[mert]')")

MERT_FILES = {"config.json": b'{"model_type": "hubert"}', "preprocessor_config.json": b"{}",
              "model.safetensors": b"weights", "README.md": b"not part of the digest"}


def _by_hand(files: dict) -> str:
    kept = sorted(n for n in files if n != "README.md")
    lines = "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n" for n in kept)
    return hashlib.sha256(lines.encode()).hexdigest()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("D2M_BENCH_MERT_V1_95M", raising=False)
    return tmp_path / "hub"


def test_cache_snapshot_is_found_and_digested(hub):
    snap = write_hf_snapshot(hub, "m-a-p/MERT-v1-95M", MERT_FILES)
    found = weights.resolve("mert-v1-95m")
    assert found.resolve() == snap.resolve()
    assert weights.digest("mert-v1-95m", found) == _by_hand(MERT_FILES)
    assert not weights.is_official("mert-v1-95m", _by_hand(MERT_FILES))


def test_explicit_and_environment_folders_come_first(hub, tmp_path, monkeypatch):
    write_hf_snapshot(hub, "m-a-p/MERT-v1-95M", MERT_FILES)
    mine = tmp_path / "mine"
    mine.mkdir()
    for name, data in MERT_FILES.items():
        (mine / name).write_bytes(data)
    assert weights.resolve("mert-v1-95m", mine) == mine
    monkeypatch.setenv("D2M_BENCH_MERT_V1_95M", str(mine))
    assert weights.resolve("mert-v1-95m") == mine
    (mine / "model.safetensors").unlink()
    with pytest.raises(UserError, match="model.safetensors or pytorch_model.bin missing") as err:
        weights.resolve("mert-v1-95m")  # a wrong env folder is an error, not a fallback to the cache
    assert "\n" not in str(err.value)


def test_missing_everywhere_says_where_to_put_it(hub):
    with pytest.raises(UserError) as err:
        weights.resolve("roberta-base")
    msg = str(err.value)
    assert "\n" not in msg and "--weights roberta-base=DIR" in msg and "D2M_BENCH_ROBERTA_BASE" in msg
    with pytest.raises(UserError, match="must be a folder"):
        weights.resolve("roberta-base", hub / "nope")


def test_download_needs_a_pin_and_removes_a_mismatch(hub, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None, cache_dir=None, force_download=False,
                               local_files_only=False):
        if local_files_only:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        calls.append((repo_id, revision, tuple(allow_patterns)))
        return str(write_hf_snapshot(cache_dir, repo_id, MERT_FILES, revision=revision or "f" * 40))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    with pytest.raises(UserError, match="no revision of m-a-p/MERT-v1-95M is pinned"):
        weights.download("mert-v1-95m")
    with pytest.raises(UserError, match="full 40-hex commit"):
        weights.download("mert-v1-95m", revision="main")
    info = weights.download("mert-v1-95m", revision="a" * 40)
    assert calls[-1][:2] == ("m-a-p/MERT-v1-95M", "a" * 40) and "*.py" in calls[-1][2]
    assert info["sha256"] == _by_hand(MERT_FILES) and info["revision"] == "a" * 40
    with pytest.raises(UserError, match="discarded, not installed"):
        weights.download("mert-v1-95m", revision="b" * 40, expect_sha256="0" * 64)
    assert not (hub / "models--m-a-p--MERT-v1-95M" / "snapshots" / ("b" * 40)).exists()
    ok = weights.download("mert-v1-95m", expect_sha256=_by_hand(MERT_FILES))
    assert ok["verified"]


def test_cli_list_and_download_refusal(hub, cli):
    write_hf_snapshot(hub, "roberta-base", {"config.json": b"{}", "vocab.json": b"{}", "merges.txt": b"",
                                            "model.safetensors": b"w"})
    out = cli("weights", "list")
    assert out.returncode == 0
    assert "found" in out.stdout.split("roberta-base:")[1].split("\n")[1]
    bad = cli("weights", "download", "roberta-base", "--url", "file:///x")
    assert bad.returncode == 2 and "--url does not apply" in bad.stderr


# --- issue 24 rows 7 and 8 ----------------------------------------------------------------------
def test_digest_covers_the_shards_transformers_would_load(hub, tmp_path):
    """Same pytorch_model.bin and config, plus model.safetensors.index.json and a shard of other
    weights: transformers loads the shard, so the recorded identity must differ."""
    plain = {"config.json": b"{}", "preprocessor_config.json": b"{}", "pytorch_model.bin": b"weights A"}
    a = tmp_path / "a"
    b = tmp_path / "b"
    for folder, extra in ((a, {}), (b, {"model.safetensors.index.json": b'{"weight_map": {}}',
                                        "model-00001-of-00001.safetensors": b"weights B"})):
        folder.mkdir()
        for name, data in {**plain, **extra, "README.md": b"docs"}.items():
            (folder / name).write_bytes(data)
    assert weights.digest("mert-v1-95m", a) != weights.digest("mert-v1-95m", b)
    (a / "README.md").write_bytes(b"other docs")
    assert weights.digest("mert-v1-95m", a) == _by_hand(plain)


def test_download_with_a_wrong_digest_keeps_the_users_snapshot(hub, monkeypatch):
    """weights download --expect-sha256 <wrong> deleted a snapshot it had not fetched."""
    import huggingface_hub

    snap = write_hf_snapshot(hub, "m-a-p/MERT-v1-95M", MERT_FILES, revision="c" * 40)
    real = huggingface_hub.snapshot_download

    def offline(repo_id, revision=None, allow_patterns=None, cache_dir=None, force_download=False,
                local_files_only=False):
        if not local_files_only:
            raise AssertionError("no download expected: the snapshot is cached")
        return real(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=True)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(UserError, match="left as it is") as err:
        weights.download("mert-v1-95m", expect_sha256="0" * 64)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in snap.iterdir()) == sorted(MERT_FILES)
    assert all((snap / n).read_bytes() == d for n, d in MERT_FILES.items())
