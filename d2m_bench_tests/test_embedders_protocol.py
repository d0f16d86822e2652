"""Protocol v2m-audio: its tables are validated before any audio is read (one-line errors naming
the protocol and key), d2m-aistpp-2s is unchanged by them, and a missing backend or layer is
reported before the beat metrics run."""
import pytest

from d2m_bench.evaluation import EvalContext, check_sections
from d2m_bench.errors import UserError
from d2m_bench.protocol import load_protocol


def test_v2m_audio_is_valid_and_d2m_protocol_has_no_new_tables():
    p = load_protocol("v2m-audio").validate_eval()
    assert p.section("fd")["embedders"] == ["vggish", "panns-cnn14-16k", "encodec-24k", "mert-v1-95m",
                                            "clap-laion-music"]
    assert p.section("kl")["classifier"] == ["panns-cnn14-16k", "passt-s-f128-p16-s10"]
    assert p.section("clap")["embedder"] == "clap-laion-music" and p.section("clap")["prompts"] == "genre"
    assert p.section("kl")["conventions"] == ["softmax", "sigmoid"]
    assert p.section("kl")["directions"] == ["ref_to_gen", "gen_to_ref"]
    d2m = load_protocol("d2m-aistpp-2s")
    assert not ({"fd", "kl", "inception", "clap"} & set(d2m.params))


@pytest.mark.parametrize("override,message", [
    ({"fd.embedders": ["openl3"]}, "fd.embedders = 'openl3' is not one of"),
    ({"fd.embedders": []}, "fd.embedders must be a non-empty list"),
    ({"kl.conventions": ["tanh"]}, "kl.conventions = 'tanh' is not one of softmax, sigmoid"),
    ({"kl.directions": "both"}, "kl.directions must be a non-empty list"),
    ({"kl.classifier": "vggish"}, "kl.classifier = 'vggish' is not one of"),
    ({"kl.classifier": ["panns-cnn14-16k", "vggish"]}, "kl.classifier = 'vggish' is not one of"),
    ({"kl.classifier": []}, "kl.classifier must name an embedder with logits"),
    ({"kl.eps": float("nan")}, "kl.eps = nan must be a finite number"),
    ({"inception.splits": 0}, "inception.splits = 0 must be an integer >= 1"),
    ({"inception.shuffle": "yes"}, "inception.shuffle = 'yes' must be true or false"),
    ({"inception.extra": 1}, "unknown key(s) in [inception]: extra"),
])
def test_bad_values_are_one_line_errors(override, message):
    with pytest.raises(UserError) as info:
        load_protocol("v2m-audio").with_overrides(override).validate_eval()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_layer_that_an_embedder_lacks_is_refused_before_work(monkeypatch, tmp_path):
    proto = load_protocol("v2m-audio").with_overrides({"fd.embedders": ["mfcc-chroma"], "fd.layers": {"mfcc-chroma": "relu"},
                                                       "kl.enabled": False, "inception.enabled": False,
                                                       "clap.enabled": False})
    with pytest.raises(UserError, match="fd.layers.mfcc-chroma = 'relu' is not an output of mfcc-chroma"):
        check_sections(proto.validate_eval(), EvalContext())


def test_missing_backend_library_names_the_extra(monkeypatch):
    from d2m_bench.embedders import base

    monkeypatch.setitem(base._EXTRA_MODULES, "panns", ("d2m_bench_no_such_module",))
    with pytest.raises(UserError) as info:
        check_sections(load_protocol("v2m-audio").with_overrides({"fd.embedders": ["panns-cnn14-16k"], "fd.layers": {},
                                                                  "clap.enabled": False}), EvalContext())
    text = str(info.value)
    assert "panns-cnn14-16k embedder needs d2m_bench_no_such_module" in text
    assert "pip install 'd2m-bench[panns]'" in text and "\n" not in text
