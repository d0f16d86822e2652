"""FAD equals the FAD of fadtk and of frechet-audio-distance on the same embeddings (issue 12 item 4).

The two judges are literal ports (d2m_bench_tests/helpers.py) of
- fadtk (microsoft/fadtk, fadtk/fad.py: ``calc_embd_statistics`` and ``calc_frechet_distance``,
  which takes the eigendecomposition square root and cross-checks it with scipy's sqrtm), and
- frechet-audio-distance (gudgud96/frechet-audio-distance, fad.py: ``calculate_embd_statistics``
  and ``calculate_frechet_distance``, scipy sqrtm with the eps retry).
Both load VGGish as ``torch.hub.load('harritaylor/torchvggish', 'vggish')`` and, by default
(``use_activation=False``), replace ``model.embeddings`` with all its children but the last,
dropping the final ReLU; the reference network here is torchvggish's own VGG class with the
same surgery. The old code (post-ReLU embeddings) fails the end-to-end test.
"""
import copy

import numpy as np
import pytest
import torch

from d2m_bench.io.audio import load_audio, write_audio
from d2m_bench.errors import UserError
from d2m_bench.evaluation import EvalContext
from d2m_bench.metrics.fad import frechet_audio_distance
from d2m_bench.io.pairing import Pair
from d2m_bench.protocol import load_protocol
from d2m_bench.results.result import EvalResult
from d2m_bench_tests.helpers import score_section, fadtk_score, gudgud_score

tv_input = pytest.importorskip("torchvggish.vggish_input")
tv_model = pytest.importorskip("torchvggish.torchvggish")


def drop_final_relu(vgg):
    """What both tools do with use_activation=False."""
    model = copy.deepcopy(vgg)
    model.embeddings = torch.nn.Sequential(*list(model.embeddings.children())[:-1])
    return model


# --- the formula -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_formula_equals_both_tools_on_full_rank_sets(seed):
    rng = np.random.default_rng(seed)
    d = 24
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    x = rng.normal(size=(400, d)) @ mix
    y = 0.3 + rng.normal(size=(300, d)) @ (mix + 0.2 * rng.normal(size=(d, d)))
    ours = frechet_audio_distance(x, y)
    assert ours == pytest.approx(fadtk_score(x, y), rel=1e-9)
    assert ours == pytest.approx(gudgud_score(x, y), rel=1e-9)
    assert frechet_audio_distance(y, x) == pytest.approx(ours, rel=1e-9)  # the tools take bg first


# --- end to end on VGGish embeddings -----------------------------------------------------------

IDS = [f"g{g}_sBM_c01_d{i + 1:02d}_m{g}{i % 6}_ch01_seg1" for i, g in enumerate(["BR", "PO", "LO", "MH"] * 4)]
SR = 16000  # the VGGish rate: no resampling, so the judges see exactly the samples eval embeds
SECONDS = 10  # 10 examples per clip: 160 per side, above the 128 dimensions


def _music(rng, brightness):
    t = np.arange(SECONDS * SR) / SR
    tones = sum(rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * rng.uniform(80, 4000) * brightness * t + rng.uniform(0, 6))
                for _ in range(6))
    beat = (np.sin(2 * np.pi * rng.uniform(1, 4) * t) > 0.7) * rng.normal(scale=0.1, size=t.size)
    return (tones + beat).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fad")
    rng = np.random.default_rng(5)
    for i, sid in enumerate(IDS):
        write_audio(tmp / "gt" / f"{sid}.wav", _music(rng, 1.0), SR, subtype="FLOAT")
        write_audio(tmp / "pred" / f"{sid}.wav", _music(rng, 0.6), SR, subtype="FLOAT")
    torch.manual_seed(7)
    reference = tv_model._vgg(postprocess=False).eval()
    weights = tmp / "vggish-random.pth"
    torch.save(reference.state_dict(), weights)
    # The judges' embeddings: the network without its final ReLU (both tools' default), and the
    # port's full output (that ReLU applied by the module itself), for the pred and gt folders.
    pre_model = drop_final_relu(reference)
    final_relu = list(reference.embeddings.children())[-1]
    emb = {}
    with torch.no_grad():
        for side in ("gt", "pred"):
            pre, post = [], []
            for sid in IDS:
                y, _ = load_audio(tmp / side / f"{sid}.wav", SR)
                out = pre_model(tv_input.waveform_to_examples(y, SR))
                pre.append(out.numpy().astype(np.float64))
                post.append(final_relu(out.clone()).numpy().astype(np.float64))
            emb[side] = {"pre_relu": np.concatenate(pre), "relu": np.concatenate(post)}
    return tmp, weights, emb


def _run(clips, overrides=None):
    tmp, weights, _ = clips
    proto = load_protocol("d2m-aistpp-2s").with_overrides(overrides or {})
    pairs = [Pair(s, tmp / "gt" / f"{s}.wav", tmp / "pred" / f"{s}.wav") for s in IDS]
    ctx = EvalContext(options={"genre_db": str(tmp / "gt"), "vggish_weights": str(weights)}, cache=True)
    return score_section("genre", pairs, proto, ctx), proto


def test_default_fad_is_the_tools_fad_on_pre_relu_embeddings(clips):
    _, _, emb = clips
    res, proto = _run(clips)
    fad = res["aggregate"]["fad_vggish"]
    assert fad["layer"] == "pre_relu" and res["meta"]["fad"]["layer"] == "pre_relu"
    assert fad["pred_examples"] == fad["gt_examples"] == 10 * len(IDS)
    gt_emb, pred_emb = emb["gt"]["pre_relu"], emb["pred"]["pre_relu"]
    assert (gt_emb < 0).mean() > 0.2  # pre-activation values: a good share negative
    want_fadtk = fadtk_score(gt_emb, pred_emb)  # fadtk <model> <baseline> <eval>
    want_gudgud = gudgud_score(gt_emb, pred_emb)  # FrechetAudioDistance().score(background, eval)
    assert want_fadtk == pytest.approx(want_gudgud, rel=1e-6)
    # float32 network outputs differ in the last bits between the two forward passes
    assert fad["value"] == pytest.approx(want_fadtk, rel=1e-4)
    # The post-ReLU number (the old default) is a different quantity, not a rounding away.
    post = fadtk_score(emb["gt"]["relu"], emb["pred"]["relu"])
    assert abs(post - want_fadtk) > 0.05 * want_fadtk

    # Retrieval keeps the port's default output (after the ReLU); each metric names its layer.
    assert res["meta"]["layer"] == "relu" and res["aggregate"]["genre_accuracy"]["layer"] == "relu"
    result = EvalResult(protocol=proto, system="s", pairing_rule="stem", inputs={}, aggregate=res["aggregate"],
                        excluded=[], per_clip=[], sections={"genre": res})
    sha = res["meta"]["weights_sha256"][:12]
    assert result.comparable_keys() == {"genre_accuracy": f"vggish:{sha}:relu",
                                        "genre_accuracy_gt_ceiling": f"vggish:{sha}:relu",
                                        "fad_vggish": f"vggish:{sha}:pre_relu"}


    # The layer is a protocol parameter (a derived protocol, another hash); the second run
    # reads the cached pre-ReLU embeddings of the first.
    res, proto = _run(clips, {"genre.fad_layer": "relu"})
    want = fadtk_score(emb["gt"]["relu"], emb["pred"]["relu"])
    assert res["aggregate"]["fad_vggish"]["layer"] == "relu"
    assert res["aggregate"]["fad_vggish"]["value"] == pytest.approx(want, rel=1e-4)
    assert proto.hash != load_protocol("d2m-aistpp-2s").hash
    with pytest.raises(UserError, match="genre.fad_layer 'fc2' is not supported"):
        _run(clips, {"genre.fad_layer": "fc2"})


def test_shipped_genre_protocols_name_both_layers():
    for name in ("d2m-aistpp-2s", "d2m-aistpp-3s", "d2m-aistpp-4s"):
        genre = load_protocol(name).section("genre")
        assert (genre["layer"], genre["fad_layer"]) == ("relu", "pre_relu"), name
