"""MERT-v1 through transformers: d2m-bench's per-frame hidden states equal fadtk's MERTModel
(ported literally in helpers.FadtkMERTModel) on the same audio and the same random, seeded
weights of the MERT-v1-95M architecture; batching, truncation, the remote-code rule, folder
errors, the cache and `d2m-bench eval` with an [fd] table on mert-v1-95m."""
import hashlib
import json
import sys

import numpy as np
import pytest

from d2m_bench.errors import UserError

from .helpers import FadtkMERTModel, assert_second_run_from_cache, audio_eval_protocol, save_mert_folder

pytest.importorskip("transformers", reason="mert extra not installed (pip install 'd2m-bench[mert]')")
torch = pytest.importorskip("torch")

SR = 24000
TOL = dict(rtol=1e-4, atol=1e-4)


def _signal(seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.normal(size=len(t))).astype(np.float32)


def _frames(n):
    """Frames of the MERT-v1 conv stack for n samples (kernel k, stride s per layer: floor((n - k) / s) + 1)."""
    for k, s in zip([10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]):
        n = (n - k) // s + 1
    return n


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on this shared 2-core machine two threads spend most of a small
    forward pass waiting for each other (measured 8x slower under load)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def modules_cache(tmp_path_factory):
    """transformers copies a folder's model code into HF_MODULES_CACHE before importing it: a
    temporary one here, not the user's ~/.cache."""
    import transformers.dynamic_module_utils as dmu

    saved, path = dmu.HF_MODULES_CACHE, str(tmp_path_factory.mktemp("hf_modules"))
    dmu.HF_MODULES_CACHE = path
    yield path
    dmu.HF_MODULES_CACHE = saved
    if path in sys.path:
        sys.path.remove(path)


@pytest.fixture(scope="module")
def mert_folder(tmp_path_factory):
    """The thin variant (helpers.MERT_95M_THIN: MERT-v1-95M's hidden size, layers and strides)."""
    return save_mert_folder(tmp_path_factory.mktemp("mert") / "MERT-v1-95M-thin", seed=3, thin=True)


@pytest.fixture(scope="module")
def fadtk(mert_folder):
    port = FadtkMERTModel(mert_folder, layer=slice(None))  # all 13 hidden states from one forward pass
    port.load_model()
    return port


def test_every_layer_equals_fadtk(mert_folder, fadtk):
    from d2m_bench.embedders import get_embedder

    # 0.5 s, 0.37 s (frames from a partial stride) and 300 samples: shorter than the 400-sample
    # receptive field, on which fadtk's call fails; d2m-bench zero-pads it to 400 samples first
    clips = [_signal(0.5, 1), _signal(0.37, 2), _signal(300 / SR, 3)]
    reference = [fadtk._get_embedding(c).numpy() for c in clips[:2]]
    reference.append(fadtk._get_embedding(np.pad(clips[2], (0, 100))).numpy()[:, None, :])  # 1 frame: squeezed
    assert [r.shape for r in reference] == [(13, _frames(12000), 768), (13, _frames(8880), 768), (13, 1, 768)]
    for k in range(13):  # each layer on the short clip and one of the others (all three for layer12)
        emb = get_embedder("mert-v1-95m", weights=mert_folder, layer=f"layer{k}")
        picked = [0, 1, 2] if k == 12 else [k % 2, 2]
        for ours, i in zip(emb.embed_waveforms([clips[i] for i in picked]), picked):
            np.testing.assert_allclose(ours, reference[i][k], **TOL)
    # the tolerance is far below what tells layers and clips apart under these weights
    assert np.abs(reference[0][12] - reference[0][11]).max() > 0.1
    assert np.abs(reference[0][12][:20] - reference[1][12][:20]).max() > 0.1
    # truncation to the first `limit` samples, fadtk's rule, at a small limit on both sides
    assert emb.max_samples == fadtk.limit == 6 * 60 * SR
    emb.max_samples = fadtk.limit = 12000
    long = _signal(0.8, 14)
    ours = emb.embed_waveforms([long])[0]
    np.testing.assert_allclose(ours, fadtk._get_embedding(long).numpy()[12], **TOL)
    np.testing.assert_allclose(ours, emb.embed_waveforms([long[:12000]])[0], **TOL)
    fadtk.limit = 6 * 60 * SR


def test_full_size_default_layer_hop_and_batching(tmp_path):
    """The full MERT-v1-95M sizes (helpers.MERT_95M_CONFIG): default layer, hop, and batched
    clips equal to the one-clip call and to fadtk's."""
    from d2m_bench.embedders import get_embedder
    from d2m_bench.embedders.base import identity

    folder = save_mert_folder(tmp_path / "MERT-v1-95M-random", seed=4)
    port = FadtkMERTModel(folder)  # layer=12, fadtk's default
    port.load_model()
    emb = get_embedder("mert-v1-95m", weights=folder)
    assert emb.layer == "layer12" and emb.layers[0] == "layer12"  # fadtk MERTModel(layer=12)
    assert emb.hop == pytest.approx(1 / 75)  # 320-sample conv stride at 24 kHz
    assert identity(emb)["dim"] == 768 and len(emb.layers) == 13
    # two clips of one length share a forward pass (other lengths: test_every_layer_equals_fadtk)
    clips = [_signal(0.4, 10), _signal(0.4, 11)]
    for clip, batched in zip(clips, emb.embed_waveforms(clips)):
        assert batched.shape == (_frames(len(clip)), 768)
        np.testing.assert_allclose(batched, emb.embed_waveforms([clip])[0], **TOL)
        np.testing.assert_allclose(batched, port._get_embedding(clip).numpy(), **TOL)


def test_remote_code_refused_without_trust_and_recorded_with_it(tmp_path, mert_folder, modules_cache):
    from d2m_bench.embedders import get_embedder
    from d2m_bench.embedders.base import resolve_embedder

    folder = save_mert_folder(tmp_path / "custom", seed=3, custom_code=True, thin=True)
    files = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest()
             for n in ("configuration_tiny_mert.py", "modeling_tiny_mert.py")}
    for call in (lambda: resolve_embedder("mert-v1-95m", weights=folder),
                 lambda: get_embedder("mert-v1-95m", weights=folder)):
        with pytest.raises(UserError) as err:
            call()
        msg = str(err.value)
        assert "\n" not in msg and str(folder) in msg
        assert f"config.json asks to run configuration_tiny_mert.py (sha256 {files['configuration_tiny_mert.py']})" in msg
        assert f"modeling_tiny_mert.py (sha256 {files['modeling_tiny_mert.py']})" in msg
        assert msg.endswith("then pass --trust-remote-code mert-v1-95m")
    emb = get_embedder("mert-v1-95m", weights=folder, trust_remote_code=True)
    meta = emb.meta()
    assert meta["model_class"] == "TinyMertModel" and meta["trust_remote_code"] is True
    assert meta["remote_code"] == files and emb.cache_config()["remote_code"] == files
    # the subclass adds nothing: the same weights give the built-in HubertModel's vectors
    clip = _signal(0.5, 20)
    plain = get_embedder("mert-v1-95m", weights=mert_folder)
    assert plain.meta()["remote_code"] == {} and plain.meta()["model_class"] == "HubertModel"
    np.testing.assert_allclose(emb.embed_waveforms([clip])[0], plain.embed_waveforms([clip])[0], **TOL)


OWN_FORWARD = """from transformers import HubertModel

from .configuration_tiny_mert import TinyMertConfig


class TinyMertModel(HubertModel):
    config_class = TinyMertConfig

    def forward(self, input_values, attention_mask=None, output_hidden_states=None, **kwargs):
        features = self.feature_extractor(input_values).transpose(1, 2)
        return self.encoder(self.feature_projection(features), output_hidden_states=output_hidden_states,
                            return_dict=True)
"""


def test_model_code_with_its_own_forward(tmp_path, mert_folder, modules_cache):
    """Folder code that overrides forward and calls the encoder itself, as MERT's modeling_MERT.py
    does: transformers 4 returns the hidden states; transformers 5 records them with hooks that
    only its own forward sets up, so there are none: one line saying which transformers to use."""
    import transformers

    from d2m_bench.embedders import get_embedder

    folder = save_mert_folder(tmp_path / "own-forward", seed=3, custom_code=True, thin=True)
    (folder / "modeling_tiny_mert.py").write_text(OWN_FORWARD)
    emb = get_embedder("mert-v1-95m", weights=folder, trust_remote_code=True)
    clip = _signal(0.5, 21)
    if int(transformers.__version__.split(".")[0]) >= 5:
        with pytest.raises(UserError, match=r"returned none hidden states under transformers 5\S* \(expected 13\); "
                                            r"the folder's own model code predates transformers 5: use "
                                            r"transformers>=4.40,<5 for it"):
            emb.embed_waveforms([clip])
    else:
        plain = get_embedder("mert-v1-95m", weights=mert_folder)
        np.testing.assert_allclose(emb.embed_waveforms([clip])[0], plain.embed_waveforms([clip])[0], **TOL)


def test_folder_errors_are_one_line(tmp_path, mert_folder, monkeypatch):
    from d2m_bench.embedders import get_embedder
    from d2m_bench.embedders.base import resolve_embedder

    def one_line(match, **kw):
        with pytest.raises(UserError, match=match) as err:
            resolve_embedder("mert-v1-95m", **kw)
        assert "\n" not in str(err.value)

    monkeypatch.delenv("D2M_BENCH_MERT_V1_95M", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    one_line("mert-v1-95m weights must be a folder", weights=tmp_path / "nowhere")
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "model.safetensors").write_bytes((mert_folder / "model.safetensors").read_bytes())
    one_line("config.json", weights=bare)
    one_line("mert-v1-95m not found.*D2M_BENCH_MERT_V1_95M")
    # a config that names code whose file is not there; one whose model type transformers lacks
    odd = tmp_path / "odd"
    odd.mkdir()
    for name in ("model.safetensors", "preprocessor_config.json"):
        (odd / name).write_bytes((mert_folder / name).read_bytes())
    (odd / "config.json").write_text(json.dumps({"model_type": "mert_model", "auto_map": {"AutoModel": "gone.M"}}))
    one_line("asks to run gone.py, which cannot be read", weights=odd, trust_remote_code=True)
    (odd / "config.json").write_text(json.dumps({"model_type": "mert_model"}))
    one_line("model_type 'mert_model' is not a transformers model type", weights=odd)
    # weights that lack a tensor of the model (transformers would leave it random)
    from safetensors.torch import load_file, save_file

    short = tmp_path / "short"
    short.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (short / name).write_bytes((mert_folder / name).read_bytes())
    state = load_file(mert_folder / "model.safetensors")
    del state["encoder.layers.3.final_layer_norm.weight"]
    save_file(state, short / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(UserError, match="lack 1 of the model's tensors .first: encoder.layers.3.final_layer_norm.weight"):
        get_embedder("mert-v1-95m", weights=short)
    # the 330M embedder refuses a 95M-sized folder after loading it
    with pytest.raises(UserError, match="not a mert-v1-330m folder: hidden_size 768, num_hidden_layers 12"):
        get_embedder("mert-v1-330m", weights=mert_folder)


def test_cache_second_run_is_all_hits(tmp_path, mert_folder, monkeypatch):
    import soundfile as sf

    from d2m_bench.embedders import get_embedder

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"c{i}.wav")
        sf.write(paths[-1], _signal(0.4, 30 + i), SR)
    emb = get_embedder("mert-v1-95m", weights=mert_folder)
    assert_second_run_from_cache(emb, paths, monkeypatch)
    # another layer is another cache entry
    other = get_embedder("mert-v1-95m", weights=mert_folder, layer="layer3")
    assert other.cache_config() != emb.cache_config()


PROTOCOL = audio_eval_protocol("mert-test", "FD on MERT-v1-95M only", """
[fd]
enabled = true
embedders = ["mert-v1-95m"]
""", sample_rate=24000)


def test_eval_fd_with_folder_code_digest_and_trust_option(tmp_path, cli, modules_cache):
    import os

    import soundfile as sf

    from d2m_bench.evaluation import EvalContext, check_sections
    from d2m_bench.protocol import load_protocol

    from .helpers import fadtk_score

    folder = save_mert_folder(tmp_path / "custom", seed=5, custom_code=True, thin=True)
    for side, offset in (("gt", 0), ("pred", 50)):
        (tmp_path / side).mkdir()
        for i in range(3):
            sf.write(tmp_path / side / f"s{i}.wav", _signal(1.2, offset + i), SR)
    protocol = tmp_path / "mert.toml"
    protocol.write_text(PROTOCOL)
    with pytest.raises(UserError, match="'panns-cnn14' is not an embedder whose weights folder can hold model code"):
        check_sections(load_protocol(protocol), EvalContext(options={"trust_remote_code": ["panns-cnn14"]}))
    # without the option the run stops before scoring anything (the API; the CLI passes it through)
    from d2m_bench import evaluate

    with pytest.raises(UserError, match=r"modeling_tiny_mert.py \(sha256 .*--trust-remote-code mert-v1-95m$"):
        evaluate(tmp_path / "pred", tmp_path / "gt", protocol=protocol, workers=1,
                 options={"weights": {"mert-v1-95m": str(folder)}})
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "r.json"
    proc = cli("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-p", protocol, "--weights",
               f"mert-v1-95m={folder}", "--out", out, "-q", "-j", "1", "--trust-remote-code", "mert-v1-95m", env=env)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    fd = res["aggregate"]["fd_mert_v1_95m"]
    # folder digest: SHA-256 of the sorted "<file sha256>  <name>" lines of its config,
    # preprocessing, code and weights files
    names = sorted(p.name for p in folder.iterdir() if p.suffix in (".json", ".py", ".safetensors"))
    lines = "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    assert len(names) == 5 and fd["weights_sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    assert fd["layer"] == "layer12" and fd["dim"] == 768 and fd["pred_vectors"] == 3 * _frames(28800)
    meta = res["sections"]["fd"]["meta"]["embedders"]["mert-v1-95m"]
    assert meta["model_class"] == "TinyMertModel"
    assert meta["remote_code"]["modeling_tiny_mert.py"] == hashlib.sha256(
        (folder / "modeling_tiny_mert.py").read_bytes()).hexdigest()
    # the value: fadtk's Frechet distance on fadtk's per-frame vectors of the same files
    port = FadtkMERTModel(folder)
    port.load_model()
    vectors = {side: np.concatenate([port._get_embedding(sf.read(tmp_path / side / f"s{i}.wav", dtype="float32")[0])
                                     .numpy() for i in range(3)]) for side in ("gt", "pred")}
    assert fd["value"] == pytest.approx(fadtk_score(vectors["gt"], vectors["pred"]), rel=1e-3)


@pytest.mark.parametrize("before", [None, "0"])
def test_loading_a_folder_puts_offline_mode_and_logging_back(mert_folder, monkeypatch, before):
    """Loading forces HF_HUB_OFFLINE=1 and quiets transformers only while the folder loads."""
    import os

    from transformers.utils import logging as hf_logging

    from d2m_bench.embedders.mert import load_folder

    if before is None:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", before)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    load_folder(mert_folder, trust_remote_code=False)
    assert os.environ.get("HF_HUB_OFFLINE") == before
    assert (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()) == (verbosity, bars)
