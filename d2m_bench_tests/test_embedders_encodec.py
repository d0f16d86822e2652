"""EnCodec 24 kHz through the encodec library: d2m-bench's per-frame embeddings equal the
library's own ``model.encoder(x)`` on the same audio and the same (random, seeded) weights;
the torchaudio placeholder never outlives the import; interface fields and cache."""
import sys

import numpy as np
import pytest

from d2m_bench.errors import UserError
from d2m_bench_tests.helpers import save_random_encodec

if __import__("importlib.util").util.find_spec("encodec") is None:
    pytest.skip("encodec extra not installed (pip install 'd2m-bench[encodec]')", allow_module_level=True)
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def encodec_weights(tmp_path_factory):
    return save_random_encodec(tmp_path_factory.mktemp("encodec") / "encodec-random.th", seed=3)


def _signal(n, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 24000
    return (0.4 * np.sin(2 * np.pi * rng.uniform(80, 3000) * t) + 0.05 * rng.normal(size=n)).astype(np.float32)


def test_embeddings_equal_the_library_encoder(encodec_weights):
    from d2m_bench.embedders import get_embedder
    from d2m_bench.embedders.encodec_emb import encodec_module

    lib = encodec_module().EncodecModel.encodec_model_24khz(pretrained=False)
    lib.load_state_dict(torch.load(encodec_weights))  # what the library's _get_pretrained does with the file
    lib.eval()
    clips = [_signal(24000, 1), _signal(24000, 2), _signal(17000, 3)]
    emb = get_embedder("encodec-24k", weights=encodec_weights)
    ours = emb.embed_waveforms(clips)
    for y, frames in zip(clips, ours):
        with torch.no_grad():
            ref = lib.encoder(torch.from_numpy(y)[None, None])[0].T.numpy()
        assert frames.shape == ref.shape == (int(np.ceil(len(y) / 320)), 128)
        np.testing.assert_allclose(frames, ref, rtol=1e-5, atol=1e-6)
    assert np.abs(ours[0] - ours[1]).max() > 1e-3


def test_torchaudio_placeholder_is_not_left_behind():
    from d2m_bench.embedders.encodec_emb import encodec_module

    encodec_module()
    if __import__("importlib.util").util.find_spec("torchaudio") is None:
        assert "torchaudio" not in sys.modules
        import encodec.utils

        with pytest.raises(ImportError, match="torchaudio is not installed"):
            encodec.utils.convert_audio(torch.zeros(1, 10), 24000, 16000, 1)


def test_interface_and_key(encodec_weights):
    from d2m_bench.io.cache import file_digest
    from d2m_bench.embedders import get_embedder
    from d2m_bench.embedders.base import identity
    from d2m_bench.results.result import embedder_key

    emb = get_embedder("encodec-24k", weights=encodec_weights)
    digest = file_digest(encodec_weights)
    assert identity(emb) == {"name": "encodec-24k", "sample_rate": 24000, "hop": 320 / 24000, "dim": 128,
                             "layers": ["encoder"], "weights_sha256": digest}
    assert embedder_key(emb.meta(), "encoder") == f"encodec-24k:{digest[:12]}:encoder"


def test_wrong_state_dict(tmp_path):
    from d2m_bench.embedders import get_embedder

    bad = tmp_path / "bad.th"
    torch.save({"encoder.x": torch.zeros(1)}, bad)
    with pytest.raises(UserError, match="not an encodec-24k state dict"):
        get_embedder("encodec-24k", weights=bad)


def test_genre_retrieval_with_encodec(encodec_weights, tmp_path):
    """Any registered embedder plugs into the genre section: predictions are byte copies of
    train clips (distance 0 whatever the weights), one of another genre: accuracy 3/4."""
    import shutil

    from d2m_bench.data.dataset import Dataset
    from d2m_bench.evaluation import EvalContext
    from d2m_bench_tests.helpers import score_section
    from d2m_bench.io.pairing import Pair
    from d2m_bench.protocol import load_protocol
    from d2m_bench.synth.synthetic import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "ds", n_train=10, n_test=4)
    data = Dataset(root)
    train = {s.genre: root / s.audio for s in data.segments("train")}
    test = data.segments("test")
    (tmp_path / "pred").mkdir()
    pairs = []
    for s in test:
        shutil.copy(train[s.genre], root / s.audio)
        pred = tmp_path / "pred" / f"{s.segment_id}.wav"
        shutil.copy(train["gBR"] if s is test[-1] else train[s.genre], pred)
        pairs.append(Pair(id=s.segment_id, gt=root / s.audio, pred=pred))
    proto = load_protocol("d2m-aistpp-2s").with_overrides({"genre.embedder": "encodec-24k"})
    res = score_section("genre", pairs, proto, EvalContext(data=data, options={"weights": {"encodec-24k": str(encodec_weights)}}))
    agg = res["aggregate"]
    assert agg["genre_accuracy_encodec_24k"]["value"] == 0.75
    assert agg["genre_accuracy_gt_ceiling_encodec_24k"]["value"] == 1.0
    assert agg["genre_accuracy_encodec_24k"]["layer"] == "encoder" and agg["fad_encodec_24k"]["layer"] == "encoder"
    assert res["meta"]["weights_sha256"] == __import__("d2m_bench.io.cache", fromlist=["x"]).file_digest(encodec_weights)
