"""PANNs CNN14 through panns_inference: d2m-bench's embeddings and label distributions equal the
library's own ``AudioTagging.inference`` on the same audio and the same (random, seeded) weights;
batching, caching, weights lookup and the interface fields."""
import csv

import numpy as np
import pytest

from d2m_bench.errors import UserError

from .helpers import assert_second_run_from_cache

pytest.importorskip("torchlibrosa", reason="panns extra not installed (pip install 'd2m-bench[panns]')")
if __import__("importlib.util").util.find_spec("panns_inference") is None:
    pytest.skip("panns extra not installed (pip install 'd2m-bench[panns]')", allow_module_level=True)


def _signal(sr, seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
    return (tone + 0.05 * rng.normal(size=len(t))).astype(np.float32)


@pytest.fixture
def library_tagger(panns_weights, tmp_path_factory, monkeypatch):
    """panns_inference.AudioTagging (the library's own call) on the random checkpoint. Its
    package __init__ reads the AudioSet label CSV from ~/panns_data (and would wget it): HOME
    points to a folder holding a CSV with 527 placeholder rows, so nothing is downloaded."""
    home = tmp_path_factory.mktemp("home")
    (home / "panns_data").mkdir()
    with open(home / "panns_data" / "class_labels_indices.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "mid", "display_name"])
        for i in range(527):
            w.writerow([i, f"/m/{i}", f"class {i}"])
    monkeypatch.setenv("HOME", str(home))
    import panns_inference
    from panns_inference import AudioTagging

    from d2m_bench.embedders import panns

    assert len(panns_inference.labels) == 527
    path = panns_weights("panns-cnn14")
    return AudioTagging(model=panns.build_model("panns-cnn14"), checkpoint_path=str(path), device="cpu"), path


def test_embeddings_and_labels_equal_the_library_call(library_tagger):
    from d2m_bench.embedders import get_embedder
    from d2m_bench.metrics.distributions import sigmoid

    tagger, path = library_tagger
    # two lengths: clips of one length share a batch, the other goes alone
    clips = [_signal(32000, 1.0, 1), _signal(32000, 1.0, 2), _signal(32000, 0.7, 3)]
    emb = get_embedder("panns-cnn14", weights=path)
    ours = emb.embed_waveforms(clips)
    for y, row in zip(clips, ours):
        clipwise, embedding = tagger.inference(y[None, :])  # the library, one clip per call
        assert row.shape == (1, 2048 + 527)
        np.testing.assert_allclose(emb.select(row, "embedding"), embedding, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sigmoid(emb.select(row, "logits")), clipwise, rtol=1e-5, atol=1e-7)
    # the tolerance above is far below what tells clips apart under these random weights
    assert np.abs(ours[0] - ours[1]).max() > 1e-4


def test_interface_fields_and_comparable_key(panns_weights):
    from d2m_bench.io.cache import file_digest
    from d2m_bench.embedders import get_embedder
    from d2m_bench.embedders.base import identity
    from d2m_bench.results.result import embedder_key

    path = panns_weights("panns-cnn14")
    emb = get_embedder("panns-cnn14", weights=path)
    digest = file_digest(path)
    assert identity(emb) == {"name": "panns-cnn14", "sample_rate": 32000, "hop": None, "dim": 2048,
                             "layers": ["embedding", "logits"], "weights_sha256": digest}
    assert embedder_key(emb.meta(), "embedding") == f"panns-cnn14:{digest[:12]}:embedding"
    assert emb.meta()["weights_official"] is False  # no published hash pinned: never "official"


def test_cache_makes_second_run_free(panns_weights, tmp_path, monkeypatch):
    import soundfile as sf

    from d2m_bench.embedders import get_embedder

    paths = []
    for i in range(3):
        p = tmp_path / f"c{i}.wav"
        sf.write(p, _signal(32000, 0.5, 10 + i), 32000)
        paths.append(p)
    emb = get_embedder("panns-cnn14", weights=panns_weights("panns-cnn14"))
    assert_second_run_from_cache(emb, paths, monkeypatch)


def test_weights_lookup_env_and_library_folder(panns_weights, tmp_path, monkeypatch):
    from d2m_bench.embedders.base import resolve_embedder

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("D2M_BENCH_PANNS_CNN14_WEIGHTS", raising=False)
    with pytest.raises(UserError, match="panns-cnn14 weights not found.*--weights panns-cnn14=PATH.*"
                                        "D2M_BENCH_PANNS_CNN14_WEIGHTS"):
        resolve_embedder("panns-cnn14")
    lib = tmp_path / "panns_data" / "Cnn14_mAP=0.431.pth"  # where panns_inference itself looks
    lib.parent.mkdir()
    lib.write_bytes(b"x")
    assert resolve_embedder("panns-cnn14")["weights"] == lib
    monkeypatch.setenv("D2M_BENCH_PANNS_CNN14_WEIGHTS", str(panns_weights("panns-cnn14")))
    assert resolve_embedder("panns-cnn14")["weights"] == panns_weights("panns-cnn14")


def test_wrong_checkpoint_is_one_line_error(tmp_path):
    import torch

    from d2m_bench.embedders import get_embedder

    bad = tmp_path / "bad.pth"
    torch.save({"model": {"fc1.weight": torch.zeros(2, 2)}}, bad)
    with pytest.raises(UserError, match="not a panns-cnn14 state dict"):
        get_embedder("panns-cnn14", weights=bad)
