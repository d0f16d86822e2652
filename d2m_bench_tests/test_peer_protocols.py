"""Issue 22: the named peer protocols equal each peer end to end, from the audio files, audio
loading included: per clip, against literal ports of the peers' loading (helpers), on a set of
mixed rates, channel counts and lengths made here. The networks carry seeded random weights
(built by the libraries, as the other end-to-end tests); that the embedders equal the libraries
on a given array is the backend tests' job, so what is tested here is everything before it."""
import shutil

import numpy as np
import pytest

from d2m_bench.evaluation import evaluate
from d2m_bench_tests.helpers import (audioldm_eval_isc, audioldm_eval_kid, audioldm_eval_kl, audioldm_eval_read_from_file,
                                     fadtk_load_audio, fadtk_score, save_random_encodec, save_random_vggish,
                                     torchaudio_resample, write_mixed_rate_pairs)

torch = pytest.importorskip("torch")
REL = 1e-4
# PANNs runs in float32, and its logits move by about 1e-6 with the batch a clip is embedded in
# (oneDNN picks kernels per batch shape and CPU: the pipeline embeds pred and gt of one length
# together, the port one role at a time). A per-clip sigmoid "KL" sits near 0 (values of 1e-4 to
# 3e-3 here), so that noise alone is up to 1e-3 of it, measured 2e-6 absolute. Loading differences
# move it by far more (asserted in the test after).
KL_FLOOR = 2e-5


def _rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def _close_kl(a, b):
    return abs(a - b) <= REL * abs(b) + KL_FLOOR


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    write_mixed_rate_pairs(root, n=6)
    return root


@pytest.mark.parametrize("rates", [(44100, 16000), (48000, 16000), (22050, 16000), (16000, 24000), (22050, 48000)])
def test_sinc_resampler_equals_torchaudios(rates):
    from d2m_bench.io.loading import sinc_resample

    y = np.random.default_rng(1).normal(size=rates[0] * 2 + 37).astype(np.float32) * 0.3
    theirs = torchaudio_resample(torch.from_numpy(y)[None], *rates)[0].numpy()
    ours = sinc_resample(y, *rates)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    assert np.array_equal(ours, theirs)  # the same float32 operations


@pytest.fixture(scope="module")
def peer_run(mixed, panns_weights):
    """(result of the audioldm-eval protocol on the mixed set, its weights file)."""
    weights = panns_weights("panns-cnn14-16k")
    return evaluate(mixed / "pred", mixed / "gt", protocol="audioldm-eval", workers=1, cache=False,
                    options={"weights": {"panns-cnn14-16k": str(weights)}}, overrides={"inception.splits": 3}), weights


def test_audioldm_eval_protocol_equals_audioldm_eval_from_the_files(mixed, peer_run):
    res, weights = peer_run
    from d2m_bench.embedders import get_embedder

    emb = get_embedder("panns-cnn14-16k", weights=weights)
    ids = [r["id"] for r in res.per_clip]

    def port(role):
        waves = [audioldm_eval_read_from_file(mixed / role / f"{i}.wav")[0].numpy() for i in ids]
        rows = emb.embed_waveforms(waves)
        return (np.concatenate([emb.select(r, "embedding") for r in rows]).astype(np.float64),
                np.concatenate([emb.select(r, "logits") for r in rows]).astype(np.float64))

    (e_gen, l_gen), (e_ref, l_ref) = port("pred"), port("gt")
    for i, row in enumerate(res.per_clip):
        soft, sig = audioldm_eval_kl(l_gen[i:i + 1], l_ref[i:i + 1])
        assert _rel(row["kl_softmax_ref_to_gen_panns_cnn14_16k"], soft) < REL, row["id"]
        assert _close_kl(row["kl_sigmoid_ref_to_gen_panns_cnn14_16k"], sig), row["id"]
    agg = res.aggregate
    soft, sig = audioldm_eval_kl(l_gen, l_ref)
    assert _rel(agg["kl_softmax_ref_to_gen_panns_cnn14_16k"]["value"], soft) < REL
    assert _close_kl(agg["kl_sigmoid_ref_to_gen_panns_cnn14_16k"]["value"], sig)
    assert _rel(agg["fd_panns_cnn14_16k"]["value"], fadtk_score(e_ref, e_gen)) < REL
    isc = audioldm_eval_isc(l_gen, splits=3)
    assert _rel(agg["inception_score_panns_cnn14_16k"]["value"], isc[0]) < REL
    kid = audioldm_eval_kid({"2048": torch.from_numpy(e_gen)}, {"2048": torch.from_numpy(e_ref)}, subsets=100,
                            subset_size=1000, degree=3, gamma=None, coef0=1, rng_seed=2020, feat_layer_name="2048")
    assert _rel(agg["kid_panns_cnn14_16k"]["value"], kid["kernel_inception_distance_mean"]) < 1e-3
    # recorded: the loading in the section meta and in the comparable key
    assert res.sections["kl"]["meta"]["classifiers"]["panns-cnn14-16k"]["loading"]["resample"] == "torchaudio_sinc_hann"
    assert res.sections["fd"]["comparable_keys"]["fd_panns_cnn14_16k"].endswith(":loading-audioldm-eval")


def test_d2m_loading_differs_from_audioldm_evals_by_a_measured_amount(mixed, peer_run):
    """The size of the difference that the protocol removes, on this set (docs/deviations.md)."""
    peer, weights = peer_run
    ours = evaluate(mixed / "pred", mixed / "gt", protocol="audioldm-eval", workers=1, cache=False,
                    options={"weights": {"panns-cnn14-16k": str(weights)}},
                    overrides={"fd.loading": {}, "kl.loading": {}, "kid.enabled": False, "inception.enabled": False})
    metric = "kl_softmax_ref_to_gen_panns_cnn14_16k"
    per_clip = [_rel(a[metric], b[metric]) for a, b in zip(ours.per_clip, peer.per_clip)]
    assert max(per_clip) > 1e-3  # loading moves the numbers well beyond float noise
    sigmoid = "kl_sigmoid_ref_to_gen_panns_cnn14_16k"
    assert max(abs(a[sigmoid] - b[sigmoid]) for a, b in zip(ours.per_clip, peer.per_clip)) > 10 * KL_FLOOR
    assert ours.sections["fd"]["comparable_keys"]["fd_panns_cnn14_16k"] != \
        peer.sections["fd"]["comparable_keys"]["fd_panns_cnn14_16k"]  # never ranked together


def _random_weights(name, folder):
    if name == "vggish":
        path = save_random_vggish(folder / "vggish-random.pth", seed=7)
        return path, {"vggish_weights": str(path)}
    if name == "mert-v1-95m":
        from d2m_bench_tests.helpers import save_mert_folder

        for module in ("transformers", "safetensors"):
            if __import__("importlib.util").util.find_spec(module) is None:
                pytest.skip(f"{module} not installed (pip install 'd2m-bench[mert]')")
        path = save_mert_folder(folder / "mert", seed=5, thin=True)
        return path, {"weights": {name: str(path)}}
    if __import__("importlib.util").util.find_spec("encodec") is None:  # importing it needs the embedder's stand-in
        pytest.skip("encodec extra not installed (pip install 'd2m-bench[encodec]')")
    path = save_random_encodec(folder / "encodec-random.th", seed=11)
    return path, {"weights": {name: str(path)}}


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed (make sysdeps installs it)")
@pytest.mark.parametrize("name,layer,sr", [("vggish", "pre_relu", 16000), ("encodec-24k", "encoder", 24000),
                                           ("mert-v1-95m", "layer12", 24000)])
def test_fadtk_protocol_equals_fadtk_from_the_files(mixed, tmp_path, name, layer, sr):
    from d2m_bench.embedders import get_embedder

    weights, options = _random_weights(name, tmp_path)
    res = evaluate(mixed / "pred", mixed / "gt", protocol="fadtk", workers=1, cache=False, options=options,
                   overrides={"fd.embedders": [name], "fd.layers": {name: layer}})
    emb = get_embedder(name, vggish_weights=weights) if name == "vggish" else \
        get_embedder(name, weights=weights, layer=layer if name.startswith("mert") else None)
    ids = [r["id"] for r in res.per_clip]
    min_len = 1 if name == "vggish" else -1  # fadtk's VGGishModel(min_len=1); EncodecEmbModel has none

    def port(role, sox_options=()):
        waves = [fadtk_load_audio(mixed / role / f"{i}.wav", sr, tmp_path / f"{role}{''.join(sox_options)}",
                                  min_len=min_len, sox_options=sox_options).astype(np.float32) for i in ids]
        return np.concatenate([emb.select(r, layer) for r in emb.embed_waveforms(waves)]).astype(np.float64)

    metric = f"fd_{name.replace('-', '_')}"
    value = res.aggregate[metric]["value"]
    # fadtk dithers anew on each conversion: the same sox random numbers on both sides for the equality
    repeatable = port("gt", ("-R",)), port("pred", ("-R",))
    assert _rel(value, fadtk_score(*repeatable)) < 1e-6
    assert res.aggregate[metric]["gt_vectors"] == len(repeatable[0])  # EnCodec: fadtk's frame count
    # fadtk as it runs: its own dither draw, which moves its FD between two conversions of the same
    # files (up to 2e-4 relative here: random weights give FDs near 1e-5, where the noise weighs most)
    assert _rel(value, fadtk_score(port("gt"), port("pred"))) < 1e-3
    assert res.sections["fd"]["comparable_keys"][metric].endswith(f":{layer}:loading-fadtk")


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed (make sysdeps installs it)")
def test_sox_loading_gives_fadtks_length_where_librosa_rounds_up(tmp_path):
    """The EnCodec residual (151 frames against fadtk's 150): 2 s at 44.1 kHz is 88200 samples;
    88200 * (24000 / 44100) is 48000.000000000004 in floats, so librosa.resample's ceil gives
    48001 samples (one zero appended) and EnCodec's 320-sample frames give 151, where sox writes
    48000 (150 frames). Loading, not a formula."""
    import soundfile as sf

    from d2m_bench.io.loading import PRESETS, load

    y = (np.random.default_rng(3).normal(size=88200) * 0.1).astype(np.float32)
    sf.write(tmp_path / "a.wav", y, 44100, subtype="PCM_16")
    ours_default = load(tmp_path / "a.wav", 24000)
    ours_fadtk = load(tmp_path / "a.wav", 24000, PRESETS["fadtk"])
    theirs = fadtk_load_audio(tmp_path / "a.wav", 24000, tmp_path / "w")
    assert len(ours_default) == 48001 and len(theirs) == 48000
    assert (-(-len(ours_default) // 320), -(-len(ours_fadtk) // 320)) == (151, 150)
    # fadtk's sox call dithers with fresh random numbers each time: within 2 steps of 1/32768 ...
    assert np.abs(ours_fadtk - theirs).max() <= 2 / 32768
    # ... and with SoX's repeatable random numbers on both sides, the same samples
    repeatable = fadtk_load_audio(tmp_path / "a.wav", 24000, tmp_path / "r", sox_options=("-R",))
    assert np.array_equal(ours_fadtk, repeatable.astype(np.float32))


def test_a_loading_table_is_validated(tmp_path):
    from d2m_bench.errors import UserError
    from d2m_bench.protocol import load_protocol

    for bad, words in (({"resample": "linear"}, "fd.loading.resample"), ({"mix": "left"}, "fd.loading.mix"),
                       ({"speed": 2}, "fd.loading"), ({"remove_dc": "yes"}, "fd.loading.remove_dc")):
        with pytest.raises(UserError, match=words.replace(".", r"\.")):
            load_protocol("audioldm-eval").with_overrides({"fd.loading": bad}).validate_eval()
