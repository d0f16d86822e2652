"""`d2m-bench eval --protocol v2m-audio` on the demo set with random-weight files of every
backend (VGGish, PANNs CNN14 16 kHz, EnCodec 24 kHz, MERT-v1-95M, LAION CLAP music, PaSST): FD,
KL, IS and CLAP score sections with weights hashes, values equal to the fadtk / audioldm_eval /
stable-audio-metrics ports on the same embeddings, comparable keys naming the weights. That each
backend's embeddings equal its library's own call is the job of test_embedders_<backend>.py."""
import json

import numpy as np
import pytest

from .helpers import (audioldm_eval_isc, audioldm_eval_kid, audioldm_eval_kl, fadtk_score, save_clap_checkpoint,
                      save_mert_folder, save_passt_weights, save_random_encodec, save_random_vggish,
                      stable_audio_metrics_kl, write_clap_hub)

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def encodec_random(tmp_path_factory):
    if __import__("importlib.util").util.find_spec("encodec") is None:
        pytest.skip("encodec extra not installed (pip install 'd2m-bench[encodec]')")
    return save_random_encodec(tmp_path_factory.mktemp("encodec") / "encodec-random.th", seed=11)


@pytest.fixture(scope="module")
def vggish_random(tmp_path_factory):
    return save_random_vggish(tmp_path_factory.mktemp("vggish") / "vggish-random.pth", seed=7)


def _need(*modules):
    for m in modules:
        if __import__("importlib.util").util.find_spec(m) is None:
            pytest.skip(f"{m} not installed (make test installs every backend; docs/genre-fad.md)")


@pytest.fixture(scope="module")
def clap_hub(tmp_path_factory):
    """A Hugging Face cache with the tiny tokenizers / text model laion_clap loads by name, made the
    cache of this process and of the eval subprocess, and a random HTSAT-base CLAP checkpoint."""
    _need("laion_clap", "transformers", "h5py", "webdataset", "wget", "ftfy")
    from d2m_bench.embedders import clap

    hub = write_clap_hub(tmp_path_factory.mktemp("hf-hub"), tmp_path_factory.mktemp("hf-work"))
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_CACHE", str(hub))
    for var in ("D2M_BENCH_ROBERTA_BASE", "D2M_BENCH_BERT_BASE_UNCASED", "D2M_BENCH_BART_BASE"):
        mp.delenv(var, raising=False)
    with clap.hub_view(clap.resolve_hub_folders()):
        clap.laion_clap_module(clap.resolve_hub_folders())
        ckpt = save_clap_checkpoint(tmp_path_factory.mktemp("clap") / "clap-music-random.pt", "HTSAT-base", seed=3)
        yield ckpt
    mp.undo()


@pytest.fixture(scope="module")
def mert_random(tmp_path_factory):
    _need("transformers", "safetensors")
    return save_mert_folder(tmp_path_factory.mktemp("mert") / "mert", seed=5, thin=True)


@pytest.fixture(scope="module")
def passt_random(tmp_path_factory):
    _need("hear21passt")
    return save_passt_weights(tmp_path_factory.mktemp("passt") / "passt-random.pt", seed=9)


def test_v2m_audio_end_to_end(tmp_path, cli, panns_weights, vggish_random, encodec_random, mert_random, clap_hub,
                              passt_random):
    from d2m_bench.io.cache import FileCache, file_digest
    from d2m_bench.embedders import embed_files, get_embedder

    from d2m_bench.embedders.weights import digest

    demo = tmp_path / "demo"
    assert cli("demo", "make", demo).returncode == 0
    genres = ["gBR", "gPO", "gLO", "gMH"]  # the demo ids are no AIST++ names: their genres for the prompts
    labels = tmp_path / "labels.csv"
    labels.write_text("id,genre\n" + "".join(f"clip{i:03d},{genres[i % 4]}\n" for i in range(12)))
    panns = panns_weights("panns-cnn14-16k")
    out = tmp_path / "r.json"
    proc = cli("eval", "--pred", demo / "generated", "--gt", demo / "gt", "-p", "v2m-audio", "--vggish-weights",
               vggish_random, "--weights", f"panns-cnn14-16k={panns}", "--weights", f"encodec-24k={encodec_random}",
               "--weights", f"mert-v1-95m={mert_random}", "--weights", f"clap-laion-music={clap_hub}",
               "--weights", f"passt-s-f128-p16-s10={passt_random}", "--labels", labels,
               "--out", out, "-q", "--system", "demo")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    for name in ("fd", "kl", "inception", "clap"):
        assert res["sections"][name]["status"] == "ok", res["sections"][name]
    agg = res["aggregate"]
    panns_sha, vggish_sha = file_digest(panns), file_digest(vggish_random)
    assert agg["fd_panns_cnn14_16k"]["weights_sha256"] == panns_sha
    assert agg["fd_vggish"]["weights_sha256"] == vggish_sha
    assert "ci" in agg["fd_vggish"] and "fad_inf" in agg["fd_vggish"]  # 128-d: intervals computed
    assert "intervals_note" in agg["fd_panns_cnn14_16k"]  # 2048-d: above fd.intervals_max_dim

    # the same numbers from the ports, on embeddings of the same files and weights (read from the
    # cache eval wrote: that they equal the libraries' outputs is test_embedders_panns/_encodec's job)
    ids = sorted(r["id"] for r in res["per_clip"])
    gt = [demo / "gt" / f"{i}.wav" for i in ids]
    pred = [next((demo / "generated").glob(f"{i}.*")) for i in ids]
    pe = get_embedder("panns-cnn14-16k", weights=panns)
    rows = embed_files(gt + pred, pe, cache=FileCache(pe.name))
    # float64 into the ports: near-equal random-weight logits make the sigmoid KL a small
    # difference of large sums, which float32 arithmetic (the ports' upstream dtype) blurs
    g_logits = np.concatenate([pe.select(rows[str(p)], "logits") for p in pred]).astype(np.float64)
    r_logits = np.concatenate([pe.select(rows[str(p)], "logits") for p in gt]).astype(np.float64)
    soft, sig = audioldm_eval_kl(g_logits, r_logits)
    assert agg["kl_softmax_ref_to_gen_panns_cnn14_16k"]["value"] == pytest.approx(soft, rel=1e-5)
    assert agg["kl_sigmoid_ref_to_gen_panns_cnn14_16k"]["value"] == pytest.approx(sig, rel=1e-5)
    assert agg["kl_softmax_gen_to_ref_panns_cnn14_16k"]["value"] == pytest.approx(
        stable_audio_metrics_kl(g_logits, r_logits), rel=1e-5)
    assert agg["kl_sigmoid_gen_to_ref_panns_cnn14_16k"]["weights_sha256"] == panns_sha
    assert agg["inception_score_panns_cnn14_16k"]["value"] == pytest.approx(
        audioldm_eval_isc(g_logits, 10)[0], rel=1e-9)
    assert agg["inception_score_gt_panns_cnn14_16k"]["value"] == pytest.approx(
        audioldm_eval_isc(r_logits, 10)[0], rel=1e-9)
    emb_p = np.concatenate([pe.select(rows[str(p)], "embedding") for p in pred])
    emb_g = np.concatenate([pe.select(rows[str(p)], "embedding") for p in gt])
    assert agg["fd_panns_cnn14_16k"]["value"] == pytest.approx(fadtk_score(emb_g, emb_p), rel=1e-4)
    # float64 into the port, as for KL: random-weight embeddings of the demo clips nearly coincide, so KID
    # (about 3e-7) is a difference of kernel sums of order 1, below float32's resolution
    kid = audioldm_eval_kid({"2048": torch.from_numpy(emb_p.astype(np.float64))},
                            {"2048": torch.from_numpy(emb_g.astype(np.float64))}, subsets=100, subset_size=1000,
                            degree=3, gamma=None, coef0=1, rng_seed=2020, feat_layer_name="2048")
    assert agg["kid_panns_cnn14_16k"]["value"] == pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-6)
    assert agg["kid_panns_cnn14_16k"]["weights_sha256"] == panns_sha
    ve = get_embedder("vggish", vggish_weights=vggish_random)
    vrows = embed_files(gt + pred, ve, cache=FileCache(ve.name))
    vp = np.concatenate([vrows[str(p)] for p in pred])
    vg = np.concatenate([vrows[str(p)] for p in gt])
    assert agg["fd_vggish"]["value"] == pytest.approx(fadtk_score(vg, vp), rel=1e-4)
    ee = get_embedder("encodec-24k", weights=encodec_random)
    erows = embed_files(gt + pred, ee, cache=FileCache(ee.name))
    assert agg["fd_encodec_24k"]["weights_sha256"] == file_digest(encodec_random)
    assert agg["fd_encodec_24k"]["value"] == pytest.approx(
        fadtk_score(np.concatenate([erows[str(p)] for p in gt]), np.concatenate([erows[str(p)] for p in pred])),
        rel=1e-4)
    # the new backends: weights identity of each number, and FD / KL equal to the ports on the
    # embeddings eval cached (same files, same weights)
    fd_mert, fd_clap = agg["fd_mert_v1_95m"], agg["fd_clap_laion_music"]
    assert fd_mert["weights_sha256"] == digest("mert-v1-95m", mert_random) and fd_mert["layer"] == "layer12"
    assert fd_clap["weights_sha256"] == file_digest(clap_hub) and fd_clap["layer"] == "audio"
    for name, layer, metric in (("mert-v1-95m", "layer12", "fd_mert_v1_95m"),
                                ("clap-laion-music", "audio", "fd_clap_laion_music")):
        emb = get_embedder(name, weights=mert_random if name == "mert-v1-95m" else clap_hub, layer=layer)
        got = embed_files(gt + pred, emb, cache=FileCache(emb.name))
        x = np.concatenate([emb.select(got[str(p)], layer) for p in pred])
        y = np.concatenate([emb.select(got[str(p)], layer) for p in gt])
        assert agg[metric]["value"] == pytest.approx(fadtk_score(y, x), rel=1e-4)
    passt_sha = file_digest(passt_random)
    te = get_embedder("passt-s-f128-p16-s10", weights=passt_random)
    trows = embed_files(gt + pred, te, cache=FileCache(te.name))
    tg = np.concatenate([te.select(trows[str(p)], "logits") for p in pred]).astype(np.float64)
    tr = np.concatenate([te.select(trows[str(p)], "logits") for p in gt]).astype(np.float64)
    kl_passt = agg["kl_softmax_gen_to_ref_passt_s_f128_p16_s10"]  # stable-audio-metrics' passt_kld
    assert kl_passt["weights_sha256"] == passt_sha
    assert kl_passt["value"] == pytest.approx(stable_audio_metrics_kl(tg, tr), rel=1e-5)
    assert set(res["sections"]["kl"]["meta"]["classifiers"]) == {"panns-cnn14-16k", "passt-s-f128-p16-s10"}
    score = agg["clap_score_clap_laion_music"]
    assert score["weights_sha256"] == file_digest(clap_hub) and score["n"] == 12
    per_clip = [r["clap_score_clap_laion_music"] for r in res["per_clip"]]
    assert score["value"] == pytest.approx(np.mean(per_clip), rel=1e-9) and all(-1 <= v <= 1 for v in per_clip)
    assert "clap_score_gt_clap_laion_music" in agg

    # per-clip KL beside each pair, with a bootstrap CI over clips
    assert all("kl_softmax_ref_to_gen_panns_cnn14_16k" in r for r in res["per_clip"])
    assert "ci" in agg["kl_softmax_ref_to_gen_panns_cnn14_16k"]

    board = tmp_path / "board.csv"
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    (runs / "demo.json").write_text(out.read_text())
    assert cli("leaderboard", "--results", tmp_path / "results", "--csv", board, "--md", tmp_path / "board.md").returncode == 0
    text = board.read_text()
    assert f"panns-cnn14-16k:{panns_sha[:12]}:embedding" in text and f"vggish:{vggish_sha[:12]}:pre_relu" in text
    assert f"panns-cnn14-16k:{panns_sha[:12]}:logits" in text
    assert f"passt-s-f128-p16-s10:{passt_sha[:12]}:logits" in text and "clap-laion-music:" in text


def test_missing_panns_weights_fail_before_work(tmp_path, cli, vggish_random):
    demo = tmp_path / "demo"
    assert cli("demo", "make", demo, "--pairs", "2").returncode == 0
    env = {**__import__("os").environ, "HOME": str(tmp_path), "TORCH_HOME": str(tmp_path / "t")}
    env.pop("D2M_BENCH_PANNS_CNN14_16K_WEIGHTS", None)
    out = tmp_path / "r.json"
    proc = cli("eval", "--pred", demo / "generated", "--gt", demo / "gt", "-p", "v2m-audio", "--vggish-weights",
               vggish_random, "--out", out, "-q", env=env)
    assert proc.returncode == 2 and not out.exists()
    assert "panns-cnn14-16k weights not found" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
