"""PaSST through hear21passt: d2m-bench's per-window logits and embeddings equal the library's own
wrapper called window by window as stable-audio-metrics' passt_kld calls it (literal port in
helpers.py), on the same audio and the same random, seeded weights; the Kaldi mel-bank port equals
torchaudio's own source bit for bit; KL / IS / FD of an eval with classifier = PaSST equal the
ports of passt_kld and audioldm_eval on the library's outputs."""
import importlib.util
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from d2m_bench.errors import UserError

from .helpers import (assert_second_run_from_cache, audio_eval_protocol, audioldm_eval_isc, save_passt_weights,
                      stable_audio_metrics_passt_kld, stable_audio_metrics_probabilities_of)

torch = pytest.importorskip("torch")
if importlib.util.find_spec("hear21passt") is None:
    pytest.skip("hear21passt not installed (pip install --no-deps hear21passt==0.0.26; docs/genre-fad.md)",
                allow_module_level=True)

NAME = "passt-s-f128-p16-s10"
SR = 32000
REFERENCE = Path(__file__).resolve().parents[1] / ".venv" / "reference"


def _signal(seconds, seed, sr=SR):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t) * (1 + np.sin(2 * np.pi * rng.uniform(1, 4) * t))
    return (tone + 0.05 * rng.normal(size=len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def passt_file(tmp_path_factory):
    return save_passt_weights(tmp_path_factory.mktemp("passt") / "passt-random.pt", seed=3)


@pytest.fixture(scope="module")
def embedder(passt_file):
    from d2m_bench.embedders import get_embedder

    return get_embedder(NAME, weights=passt_file)


@pytest.fixture(scope="module")
def library_model(passt_file):
    """hear21passt's own PasstBasicWrapper(mode="all") with get_basic_model's mel settings, built
    from the library's modules here (get_basic_model itself would download pretrained weights)."""
    from d2m_bench.embedders import passt

    net_module, preprocess, wrapper = passt.library()
    torchaudio_present = importlib.util.find_spec("torchaudio") is not None
    mel = preprocess.AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024,
                                    freqm=48 if torchaudio_present else 0, timem=192 if torchaudio_present else 0,
                                    htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000)
    net = net_module.get_model(arch="passt_s_swa_p16_128_ap476", pretrained=False)
    net.load_state_dict(torch.load(passt_file, weights_only=True))
    return wrapper.PasstBasicWrapper(mel=mel, net=net, mode="all").eval()


class _Recorder:
    """A passt_kld "model" (logits out) that keeps the wrapper's whole [logits | embedding] rows.
    ``memo`` (shared between recorders) answers a window seen before without a second forward pass."""

    def __init__(self, model, memo=None):
        self.model, self.rows, self.memo = model, [], {} if memo is None else memo

    def __call__(self, x):
        key = x.numpy().tobytes()
        if key not in self.memo:
            self.memo[key] = self.model(x)
        out = self.memo[key]
        self.rows.append(out.numpy().copy())
        return out[:, :527]


def test_windows_equal_the_library_call(embedder, library_model):
    from d2m_bench.metrics.distributions import softmax

    # 1.0 s: one window fed unpadded (under 15 % of 10 s); 11 s: windows at 0 and 5 s, the second
    # 6 s long and zero-padded to 10 s, both in one batch on our side
    clips = [_signal(1.0, 1), _signal(11.0, 2)]
    emb = embedder
    ours = emb.embed_waveforms(clips)
    for y, rows in zip(clips, ours):
        rec = _Recorder(library_model)
        probs = stable_audio_metrics_probabilities_of(rec, y).numpy()
        lib = np.concatenate(rec.rows)
        assert rows.shape == lib.shape == (len(rec.rows), 527 + 768)
        np.testing.assert_allclose(rows, lib, rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(softmax(emb.select(rows, "logits"))[0], probs, rtol=1e-4, atol=1e-9)
        np.testing.assert_allclose(emb.select(rows, "embedding")[0], lib[:, 527:].mean(axis=0), rtol=1e-4, atol=2e-5)
    assert ours[1].shape[0] == 2
    # the tolerance is far below what tells windows apart under these random weights
    assert np.abs(ours[1][0] - ours[1][1]).max() > 1e-2


def _torchaudio_kaldi():
    """torchaudio's compliance/kaldi.py: the installed module, else its source read out of the
    wheel that `make test` downloads (not installed: no torchaudio build matches this torch) and
    run with a stand-in ``torchaudio`` module (get_mel_banks uses none of it)."""
    if importlib.util.find_spec("torchaudio") is not None:
        import torchaudio.compliance.kaldi as kaldi

        return kaldi.get_mel_banks
    wheels = sorted(REFERENCE.glob("torchaudio-*.whl"))
    if not wheels:
        pytest.skip(f"no torchaudio wheel in {REFERENCE} (make test downloads it with pip download --no-deps)")
    source = zipfile.ZipFile(wheels[-1]).read("torchaudio/compliance/kaldi.py").decode()
    namespace = {"__name__": "torchaudio_kaldi_reference"}
    saved = sys.modules.get("torchaudio")
    sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        exec(compile(source, f"{wheels[-1].name}/torchaudio/compliance/kaldi.py", "exec"), namespace)
    finally:
        if saved is None:
            del sys.modules["torchaudio"]
        else:
            sys.modules["torchaudio"] = saved
    return namespace["get_mel_banks"]


@pytest.mark.parametrize("args", [
    (128, 1024, 32000, 0.0, 15000, 100.0, -500.0, 1.0),  # PaSST in eval mode (fmax None -> 16000 - 1000)
    (128, 1024, 32000, 7.0, 15400, 100.0, -500.0, 1.0),  # PaSST's training-mode jitter of fmin / fmax
    (64, 512, 16000, 20.0, 0.0, 100.0, -500.0, 1.0),  # high_freq 0: Nyquist
    (80, 400, 16000, 20.0, -400.0, 100.0, -500.0, 1.0),  # negative high_freq: Nyquist - 400
    (23, 256, 8000, 0.0, 4000.0, 100.0, -500.0, 1.0),
])
def test_kaldi_mel_banks_equal_torchaudio_bit_for_bit(args):
    from d2m_bench.embedders.kaldi_mel import get_mel_banks

    reference = _torchaudio_kaldi()
    bins, centers = get_mel_banks(*args)
    want_bins, want_centers = reference(*args)
    assert bins.dtype == want_bins.dtype and bins.shape == want_bins.shape == (args[0], args[1] // 2)
    assert torch.equal(bins, want_bins) and torch.equal(centers, want_centers)


def test_kaldi_port_refuses_what_it_does_not_implement():
    from d2m_bench.embedders.kaldi_mel import get_mel_banks

    with pytest.raises(ValueError, match="no VTLN warping"):
        get_mel_banks(128, 1024, 32000, 0.0, 15000, 100.0, -500.0, 1.1)
    with pytest.raises(ValueError, match="bad mel band edges"):
        get_mel_banks(128, 1024, 32000, 0.0, 17000, 100.0, -500.0, 1.0)


_PROTOCOL = audio_eval_protocol("passt-test", "FD, KL and IS on PaSST", """
[fd]
enabled = true
embedders = ["passt-s-f128-p16-s10"]

[kl]
enabled = true
classifier = "passt-s-f128-p16-s10"
conventions = ["softmax"]
directions = ["gen_to_ref", "ref_to_gen"]

[inception]
enabled = true
classifier = "passt-s-f128-p16-s10"
splits = 2

[ci]
level = 0.95
n_resamples = 200
seed = 0
""")


def test_eval_with_passt_classifier_equals_passt_kld(tmp_path, passt_file, library_model):
    import soundfile as sf

    import d2m_bench
    from d2m_bench.io.cache import file_digest
    from d2m_bench.metrics.fad import frechet_audio_distance

    ids = ["a", "b", "c", "d"]
    for side, offset in (("gt", 0), ("pred", 10)):
        (tmp_path / side).mkdir()
        for k, i in enumerate(ids):  # mixed rates and channels (issue 22): passt_kld's librosa.load mixes and resamples
            sr = (16000, 22050, 44100, 48000)[(k + offset // 10) % 4]
            channels = [_signal(1.0 + 0.1 * k, offset + k + c, sr=sr) for c in range(1 + (k + offset // 10) % 2)]
            sf.write(tmp_path / side / f"{i}.wav", np.stack(channels, axis=1), sr, subtype="FLOAT")
    proto = tmp_path / "passt.toml"
    proto.write_text(_PROTOCOL)
    result = d2m_bench.evaluate(tmp_path / "pred", tmp_path / "gt", protocol=proto, workers=1,
                                options={"weights": {NAME: str(passt_file)}})
    agg = result.aggregate
    digest = file_digest(passt_file)

    # passt_kld (gen_to_ref) on the same files through the library's wrapper
    memo = {}
    expected = float(stable_audio_metrics_passt_kld(_Recorder(library_model, memo), ids, str(tmp_path / "pred"),
                                                    str(tmp_path / "gt")))
    kl = agg["kl_softmax_gen_to_ref_passt_s_f128_p16_s10"]
    assert kl["value"] == pytest.approx(expected, rel=1e-4)
    assert kl["weights_sha256"] == digest and kl["embedder"] == NAME
    # the other direction differs by far more than that tolerance (random weights: near-uniform labels)
    assert abs(agg["kl_softmax_ref_to_gen_passt_s_f128_p16_s10"]["value"] - expected) > 10 * 1e-4 * expected

    # IS and FD from the library's outputs on the same files (probabilities and window embeddings)
    def library_outputs(side):
        import librosa

        probs, embs = [], []
        for i in ids:
            rec = _Recorder(library_model, memo)
            audio, _ = librosa.load(tmp_path / side / f"{i}.wav", sr=SR, mono=True)
            probs.append(stable_audio_metrics_probabilities_of(rec, audio).numpy().astype(np.float64))
            embs.append(np.concatenate(rec.rows)[:, 527:].mean(axis=0))
        return np.array(probs), np.array(embs)

    pred_p, pred_e = library_outputs("pred")
    gt_p, gt_e = library_outputs("gt")
    # softmax(log p) = p: the port's probabilities stand in for logits
    assert agg["inception_score_passt_s_f128_p16_s10"]["value"] == pytest.approx(
        audioldm_eval_isc(np.log(pred_p), 2)[0], rel=1e-4)
    assert agg["inception_score_gt_passt_s_f128_p16_s10"]["weights_sha256"] == digest
    fd = agg["fd_passt_s_f128_p16_s10"]
    assert fd["weights_sha256"] == digest and fd["dim"] == 768 and fd["layer"] == "embedding"
    # the FD formula itself is checked against fadtk in test_fad_conventions; here: which vectors
    assert fd["value"] == pytest.approx(frechet_audio_distance(pred_e, gt_e), rel=1e-3)
    meta = result.sections["kl"]["meta"]["classifiers"]["passt-s-f128-p16-s10"]
    assert meta["mel_banks"].startswith("torchaudio" if importlib.util.find_spec("torchaudio") else "d2m_bench")


def test_protocol_accepts_any_classifier_with_logits():
    from d2m_bench.protocol import load_protocol

    base = load_protocol("v2m-audio")
    ok = base.with_overrides({"kl.classifier": NAME, "inception.classifier": NAME}).validate_eval()
    assert ok.section("kl")["classifier"] == NAME
    for name in ("vggish", "mfcc-chroma", "encodec-24k"):  # no logits output
        with pytest.raises(UserError, match=f"kl.classifier = '{name}' is not one of .*{NAME}"):
            base.with_overrides({"kl.classifier": name}).validate_eval()


def test_identity_cache_and_short_or_silent_clips(embedder, tmp_path, monkeypatch):
    import soundfile as sf

    from d2m_bench.embedders.base import identity
    from d2m_bench.results.result import embedder_key

    emb = embedder
    digest = emb.weights_sha256
    assert identity(emb) == {"name": NAME, "sample_rate": 32000, "hop": None, "dim": 768,
                             "layers": ["embedding", "logits"], "weights_sha256": digest}
    assert embedder_key(emb.meta(), "logits") == f"{NAME}:{digest[:12]}:logits"
    assert emb.meta()["weights_official"] is False
    # 0.1 s is under one patch (16 STFT frames): zero-padded to 4801 samples instead of passt_kld's
    # crash; a silent clip is not scaled (peak 0) instead of passt_kld's NaN
    short, silent = emb.embed_waveforms([_signal(0.1, 5), np.zeros(SR, np.float32)])
    assert short.shape == silent.shape == (1, 527 + 768)
    assert np.isfinite(short).all() and np.isfinite(silent).all()
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"c{i}.wav")
        sf.write(paths[-1], _signal(0.5, 20 + i), SR)
    assert_second_run_from_cache(emb, paths, monkeypatch)


def test_weights_lookup_and_wrong_checkpoint(passt_file, tmp_path, monkeypatch):
    from d2m_bench.embedders import get_embedder
    from d2m_bench.embedders.base import resolve_embedder

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("D2M_BENCH_PASST_WEIGHTS", raising=False)
    with pytest.raises(UserError, match=f"{NAME} weights not found.*--weights {NAME}=PATH.*D2M_BENCH_PASST_WEIGHTS"
                                        ".*passt-s-f128-p16-s10-ap.476-swa.pt"):
        resolve_embedder(NAME)
    monkeypatch.setenv("D2M_BENCH_PASST_WEIGHTS", str(passt_file))
    assert resolve_embedder(NAME)["weights"] == passt_file
    bad = tmp_path / "bad.pt"
    torch.save({"head.1.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(UserError, match=f"not a {NAME} state dict"):
        get_embedder(NAME, weights=bad)


def test_missing_library_names_the_no_deps_install(monkeypatch):
    from d2m_bench.embedders import base

    monkeypatch.setitem(base._EXTRA_MODULES, "passt", ("d2m_bench_no_such_module",))
    with pytest.raises(UserError) as info:
        base.resolve_embedder(NAME)
    text = str(info.value)
    assert f"{NAME} embedder needs d2m_bench_no_such_module" in text and "\n" not in text
    # the extra alone cannot bring hear21passt (it declares timm and torchaudio): the message says how
    assert "pip install 'd2m-bench[passt]' and pip install --no-deps hear21passt==0.0.26" in text
