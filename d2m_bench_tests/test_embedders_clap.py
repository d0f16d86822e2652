"""LAION CLAP through laion_clap: d2m-bench's audio and text embeddings equal the library's own
``CLAP_Module`` calls on the same audio and the same (random, seeded) checkpoint, loaded by the
library's own ``load_ckpt``; the CLAP score of ``eval`` equals a port of stable-audio-metrics'
``clap_score``; the ``audio`` output equals a port of fadtk's CLAP windows. Nothing is downloaded:
the Hugging Face files laion_clap loads by name (tokenizers of roberta-base, bert-base-uncased,
facebook/bart-base; the roberta-base config and weights) are tiny ones written into a Hugging Face
cache folder made here, and the network is refused while models are built."""
import socket

import numpy as np
import pytest

from d2m_bench.errors import UserError

from .helpers import fadtk_clap_embeddings, save_clap_checkpoint, stable_audio_metrics_clap_score, write_clap_hub

for _module in ("laion_clap", "transformers", "huggingface_hub", "torchlibrosa", "h5py", "webdataset", "wget", "ftfy"):
    if __import__("importlib.util").util.find_spec(_module) is None:
        pytest.skip(f"clap extra not installed ({_module}; pip install 'd2m-bench[clap]' and --no-deps laion_clap)",
                    allow_module_level=True)

SR = 48000
AIST = {"gBR_sBM_cAll_d04_mBR0_ch01": "break dance music", "gPO_sBM_cAll_d10_mPO1_ch02": "pop dance music",
        "gLH_sBM_cAll_d16_mLH2_ch03": "LA style hip-hop dance music"}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    return write_clap_hub(tmp_path_factory.mktemp("hf-hub"), tmp_path_factory.mktemp("hf-work"))


@pytest.fixture(scope="module")
def offline(hub_cache):
    """The fake cache is the Hugging Face cache, huggingface_hub is offline and sockets refuse to
    connect: whatever tries to download fails loudly."""
    import huggingface_hub.constants as hub

    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_CACHE", str(hub_cache))
    for var in ("D2M_BENCH_ROBERTA_BASE", "D2M_BENCH_BERT_BASE_UNCASED", "D2M_BENCH_BART_BASE"):
        mp.delenv(var, raising=False)
    mp.setattr(hub, "HF_HUB_CACHE", str(hub_cache))
    mp.setattr(hub, "HF_HUB_OFFLINE", True)

    def refuse(*args, **kwargs):
        raise OSError("network use in a test")

    mp.setattr(socket.socket, "connect", refuse)
    from d2m_bench.embedders import clap

    # transformers 4.x copied the cache path and offline flag at import: the backend's own view
    # of the resolved folders covers the library's calls in these fixtures too
    with clap.hub_view(clap.resolve_hub_folders()):
        yield hub_cache
    mp.undo()


@pytest.fixture(scope="module")
def checkpoint(offline, tmp_path_factory):
    """A published-shaped checkpoint of seeded random weights from laion_clap's own create_model."""
    from d2m_bench.embedders import clap

    clap.laion_clap_module(clap.resolve_hub_folders())
    return save_clap_checkpoint(tmp_path_factory.mktemp("clap") / "630k-audioset-best.pt", "HTSAT-tiny", seed=0)


@pytest.fixture(scope="module")
def library(checkpoint):
    """laion_clap's CLAP_Module with the library's own load_ckpt (it unpickles without weights_only:
    fine for the file this test wrote)."""
    import laion_clap

    module = laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-tiny", device="cpu")
    module.load_ckpt(str(checkpoint), verbose=False)
    return module


@pytest.fixture(scope="module")
def ours(checkpoint):
    from d2m_bench.embedders import get_embedder

    return get_embedder("clap-laion-audio", weights=checkpoint)


def _signal(seconds, seed, amp=0.3):
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    return (amp * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.normal(size=len(t))).astype(np.float32)


def _unit(v):
    return v / np.linalg.norm(v)


def test_audio_embeddings_equal_the_library_call(ours, library):
    from d2m_bench.embedders import clap

    short, long = _signal(1.5, 1), _signal(10.25, 2)
    # audio: fadtk's windows (10 s every 1 s, zero-padded), each through the library as fadtk calls it
    (rows,) = ours.embed_waveforms([short])
    assert rows.shape == (2, 512) and ours.embed_waveforms([long[:int(2.01 * SR)]])[0].shape == (3, 512)
    # a lone sample past 2 s (librosa's rounding when resampling 2 s to 48 kHz) opens no third window
    assert len(clap.fadtk_windows(long[:2 * SR + 1])) == 2 and len(clap.fadtk_windows(long[:2 * SR + 2])) == 3
    np.testing.assert_allclose(ours.select(rows, "audio"), fadtk_clap_embeddings(library, short), atol=2e-5)
    clip = ours.for_layer("clip")
    clip_rows = clip.embed_waveforms([short, long])
    assert [r.shape for r in clip_rows] == [(1, 512), (1, 512)]
    # clip, up to 10 s: stable-audio-metrics' preparation and the library's own repeat-padding
    gain = np.power(10.0, -1 / 20) / np.abs(short).max()
    np.testing.assert_allclose(clip.select(clip_rows[0], "clip")[0],
                               library.get_audio_embedding_from_data([short.astype(np.float64) * gain])[0], atol=2e-5)
    # clip, over 10 s: the library on [0, 10 s) and the last 10 s (never its random crop), mean, unit length
    y = long.astype(np.float64) * (np.power(10.0, -1 / 20) / np.abs(long).max())
    pieces = library.get_audio_embedding_from_data([y[:10 * SR], y[-10 * SR:]])
    np.testing.assert_allclose(clip.select(clip_rows[1], "clip")[0], _unit(pieces.mean(axis=0)), atol=2e-5)
    # the tolerance is far below what tells these clips apart under the random weights
    assert np.abs(clip_rows[0] - clip_rows[1]).max() > 1e-2
    with pytest.raises(UserError, match="computes its 'clip' output"):
        clip.select(clip_rows[0], "audio")


def test_text_embeddings_equal_the_library_call(ours, library):
    prompts = ["break dance music", "pop dance music", "a song"]
    np.testing.assert_allclose(ours.embed_texts(prompts), library.get_text_embedding(prompts), atol=1e-5)
    assert abs(float(ours.embed_texts(prompts[:1])[0] @ ours.embed_texts(prompts[1:2])[0])) < 0.9999


def test_identity_and_settings(ours, checkpoint, offline):
    from d2m_bench.io.cache import file_digest
    from d2m_bench.embedders.base import identity
    from d2m_bench.embedders.hf_weights import folder_digest
    from d2m_bench.embedders.weights import KNOWN, resolve

    ident = identity(ours)
    assert ident == {"name": "clap-laion-audio", "sample_rate": 48000, "hop": 1.0, "dim": 512,
                     "layers": ["audio", "clip"], "weights_sha256": file_digest(checkpoint)}
    assert identity(ours.for_layer("clip"))["hop"] is None
    assert ours.cache_config() != ours.for_layer("clip").cache_config()  # outputs never share a cache entry
    assert ours.text_sha256 == folder_digest(KNOWN["roberta-base"], resolve("roberta-base"))
    assert ours.settings["amodel"] == "HTSAT-tiny" and not ours.settings["enable_fusion"]
    import huggingface_hub.constants as hub

    from d2m_bench.embedders import clap

    before = hub.HF_HUB_CACHE
    with clap.hub_view(clap.resolve_hub_folders()) as view:
        assert hub.HF_HUB_CACHE == view != before
    assert hub.HF_HUB_CACHE == before and not __import__("os").path.exists(view)  # each build's view is gone


def test_eval_clap_score_equals_stable_audio_metrics(ours, library, tmp_path, monkeypatch):
    import soundfile as sf

    import d2m_bench
    from d2m_bench.sections import embedding as audio_sections

    monkeypatch.setenv("D2M_BENCH_CACHE", str(tmp_path / "cache"))
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    audio = {}
    for i, cid in enumerate(AIST):
        for folder, seed in ((pred, 10 + i), (gt, 20 + i)):
            sf.write(folder / f"{cid}.wav", _signal(1.0 + 0.25 * i, seed, amp=0.1 + 0.2 * i), SR, subtype="FLOAT")
        audio[cid] = sf.read(pred / f"{cid}.wav", dtype="float32")[0]
    overrides = {"clap.enabled": True, "clap.embedder": "clap-laion-audio", "alignment.enabled": False}
    # the network loaded above stands for one an [fd] entry of the run loaded: the section reuses it
    monkeypatch.setitem(audio_sections._EMBEDDERS, ("fd", ours.name), ours)
    result = d2m_bench.evaluate(pred, gt, protocol="tolerance", overrides=overrides,
                                options={"weights": {"clap-laion-audio": str(ours.weights_path)}})
    agg = result.aggregate["clap_score_clap_laion_audio"]
    assert agg["value"] == pytest.approx(stable_audio_metrics_clap_score(library, AIST, audio), abs=1e-5)
    assert agg["n"] == 3 and agg["weights_sha256"] == ours.weights_sha256 and agg["text_sha256"] == ours.text_sha256
    gt_audio = {cid: sf.read(gt / f"{cid}.wav", dtype="float32")[0] for cid in AIST}
    assert result.aggregate["clap_score_gt_clap_laion_audio"]["value"] == pytest.approx(
        stable_audio_metrics_clap_score(library, AIST, gt_audio), abs=1e-5)
    section = result.sections["clap"]
    assert section["comparable_keys"]["clap_score_clap_laion_audio"] == (
        f"clap-laion-audio:{ours.weights_sha256[:12]}:clip:text-{ours.text_sha256[:12]}")
    per_clip = {r["id"]: r["clap_score_clap_laion_audio"] for r in result.per_clip}
    cid = "gLH_sBM_cAll_d16_mLH2_ch03"
    assert per_clip[cid] == pytest.approx(stable_audio_metrics_clap_score(library, {cid: AIST[cid]}, audio), abs=1e-5)

    # prompts from a CSV; an id without a prompt is excluded, named
    csv_path = tmp_path / "prompts.csv"
    csv_path.write_text("id,text\ngBR_sBM_cAll_d04_mBR0_ch01,fast breakbeat\ngPO_sBM_cAll_d10_mPO1_ch02,calm piano\n")
    result = d2m_bench.evaluate(pred, gt, protocol="tolerance", overrides={**overrides, "clap.prompts": "csv"},
                                options={"weights": {"clap-laion-audio": str(ours.weights_path)},
                                         "prompts": str(csv_path)})
    prompts = {"gBR_sBM_cAll_d04_mBR0_ch01": "fast breakbeat", "gPO_sBM_cAll_d10_mPO1_ch02": "calm piano"}
    agg = result.aggregate["clap_score_clap_laion_audio"]
    assert agg["value"] == pytest.approx(stable_audio_metrics_clap_score(library, prompts, audio), abs=1e-5)
    assert agg["n"] == 2 and agg["prompts"] == "csv"
    assert [e["id"] for e in result.excluded if e.get("section") == "clap"] == ["gLH_sBM_cAll_d16_mLH2_ch03"]
    assert result.sections["clap"]["comparable_keys"]["clap_score_clap_laion_audio"].endswith(
        ":prompts-" + agg["prompts_sha256"][:12])

    # genre prompts from eval --labels (ids that are no AIST++ names, as on the demo set, get theirs this way)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,genre\ngBR_sBM_cAll_d04_mBR0_ch01,KR\n")
    result = d2m_bench.evaluate(pred, gt, protocol="tolerance", overrides=overrides,
                                options={"weights": {"clap-laion-audio": str(ours.weights_path)}, "labels": str(labels)})
    cid = "gBR_sBM_cAll_d04_mBR0_ch01"
    row = next(r for r in result.per_clip if r["id"] == cid)
    assert row["clap_score_clap_laion_audio"] == pytest.approx(
        stable_audio_metrics_clap_score(library, {cid: "krump dance music"}, audio), abs=1e-5)


def test_checkpoint_forms_and_mismatch(ours, checkpoint, tmp_path):
    """A bare state dict without the module. prefix and the old buffer loads to the same model; a
    checkpoint of the other architecture (HTSAT-tiny into the HTSAT-base music model) is one line."""
    import torch

    from d2m_bench.embedders.clap import ClapEmbedder, checkpoint_state, load_checkpoint

    state = checkpoint_state(load_checkpoint(checkpoint), checkpoint)
    bare = tmp_path / "bare.pt"
    torch.save(state, bare)
    assert checkpoint_state(load_checkpoint(bare), bare).keys() == state.keys()
    with pytest.raises(UserError) as err:
        ClapEmbedder(checkpoint, name="clap-laion-music", hub_folders=ours.hub_folders)
    assert "\n" not in str(err.value) and "not a clap-laion-music (HTSAT-base) state dict" in str(err.value)
    junk = tmp_path / "junk.pt"
    torch.save({"state_dict": [1, 2]}, junk)
    with pytest.raises(UserError, match="not a CLAP checkpoint"):
        checkpoint_state(load_checkpoint(junk), junk)


def test_missing_hugging_face_files_are_one_line(offline, checkpoint, tmp_path, monkeypatch):
    from d2m_bench.embedders import clap
    from d2m_bench.embedders.base import resolve_embedder

    empty = tmp_path / "empty-hub"
    empty.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(empty))
    with pytest.raises(UserError) as err:
        resolve_embedder("clap-laion-audio", weights=checkpoint)
    msg = str(err.value)
    assert "\n" not in msg and "roberta-base" in msg and "d2m-bench weights download roberta-base" in msg
    # --weights NAME=DIR for each folder: found without any cache
    folders = {"roberta-base": "roberta-base", "bert-base-uncased": "bert-base-uncased", "bart-base": "facebook--bart-base"}
    explicit = {name: next((offline / f"models--{repo}" / "snapshots").iterdir()) for name, repo in folders.items()}
    found = resolve_embedder("clap-laion-audio", weights=checkpoint, hub_weights={**explicit, "vggish": "unused"})
    assert found["hub"] == explicit and found["weights"] == checkpoint
    # roberta present, bart missing: the message names bart-base
    monkeypatch.setenv("HF_HUB_CACHE", str(offline))
    monkeypatch.setenv("D2M_BENCH_BART_BASE", str(tmp_path / "no-such-folder"))
    with pytest.raises(UserError, match="bart-base") as err:
        clap.resolve_hub_folders()
    assert "\n" not in str(err.value)


def test_protocol_and_prompt_errors(tmp_path):
    from d2m_bench.sections.clap import genre_prompt, read_prompts
    from d2m_bench.protocol import load_protocol

    for override, expected in (({"clap.embedder": "vggish"}, "clap.embedder"),
                               ({"clap.template": "music of"}, "{genre}"),
                               ({"clap.template": "{genre} {mood}"}, "only {genre}"),
                               ({"clap.prompts": "captions"}, "clap.prompts"),
                               ({"clap.scale": 0}, "clap.scale")):
        with pytest.raises(UserError, match="clap") as err:
            load_protocol("tolerance").with_overrides({"clap.enabled": True, **override}).validate_eval()
        assert expected in str(err.value) and "\n" not in str(err.value)
    bad = tmp_path / "p.csv"
    bad.write_text("id,caption\na,b\n")
    with pytest.raises(UserError, match="id,text"):
        read_prompts(bad)
    bad.write_text("id,text\na,one\na,two\n")
    with pytest.raises(UserError, match="two different prompts"):
        read_prompts(bad)
    assert genre_prompt("gMH", "{genre} dance music") == "middle hip-hop dance music"
    assert genre_prompt("tango", "{genre}") == "tango"


def test_importing_laion_clap_leaves_numba_cache_dir_alone(hub_cache, tmp_path):
    """laion_clap's pann_model sets NUMBA_CACHE_DIR=/tmp/ at import. Left in place, every later
    subprocess compiled librosa's kernels into one /tmp cache shared by concurrent processes, which
    crashed them (SIGSEGV in `make test` run from a clone under /tmp). A fresh process, since the
    import happens once per process."""
    import os
    import subprocess
    import sys

    code = ("import os\n"
            "from d2m_bench.embedders import clap\n"
            "clap.laion_clap_module(clap.resolve_hub_folders())\n"
            "import numba.core.config as c\n"
            "c.reload_config()\n"
            "print(repr(os.environ.get('NUMBA_CACHE_DIR')), repr(c.CACHE_DIR))\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR" and not k.startswith("D2M_BENCH_")}
    env["HF_HUB_CACHE"] = str(hub_cache)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["None", "''"]
