"""The Python API (issue 11 item 3): `d2m_bench.evaluate` is always the function, can be called
repeatedly, and gives the numbers `d2m-bench eval` writes; the documented entry points are typed."""
import inspect
import json
import subprocess
import sys
import typing

import pytest

import d2m_bench
from d2m_bench.synth.demo import make_demo


def _python(code):
    """Run `code` in a fresh interpreter: which submodules were imported first matters here."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_from_import_gives_the_function_even_after_the_module_was_imported():
    out = _python("import d2m_bench.evaluation, d2m_bench.protocol, d2m_bench.mos.aggregate\n"
                  "from d2m_bench import evaluate, load_protocol, aggregate\n"
                  "import d2m_bench, types\n"
                  "assert isinstance(evaluate, types.FunctionType), type(evaluate)\n"
                  "assert evaluate is d2m_bench.evaluation.evaluate is d2m_bench.evaluate\n"
                  "assert load_protocol is d2m_bench.protocol.load_protocol\n"
                  "assert aggregate is d2m_bench.mos.aggregate.aggregate\n"
                  "from d2m_bench import EvalResult, Protocol\n"
                  "assert EvalResult is d2m_bench.results.result.EvalResult and Protocol is d2m_bench.protocol.Protocol\n"
                  "print('ok')")
    assert out.strip() == "ok"


def test_importing_the_package_stays_light():
    out = _python("import sys, d2m_bench\n"
                  "print(sorted(m for m in ('librosa', 'torch', 'numba', 'pandas') if m in sys.modules))")
    assert out.strip() == "[]"


def test_unknown_attributes_raise_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        d2m_bench.no_such_thing
    assert {"evaluate", "load_protocol", "available_protocols", "aggregate"} <= set(dir(d2m_bench))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("api") / "demo", n=4)


def test_evaluate_twice_and_the_cli_give_the_same_numbers(demo, tmp_path, cli):
    proc = cli("eval", "--pred", demo / "generated", "--gt", demo / "gt", "--out", tmp_path / "cli.json", "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "cli.json").read_text())

    first = d2m_bench.evaluate(demo / "generated", demo / "gt", workers=1)
    second = d2m_bench.evaluate(str(demo / "generated"), str(demo / "gt"), protocol="d2m-aistpp-2s", cache=False)
    for result in (first, second):
        assert result.protocol.hash == doc["protocol"]["hash"]
        assert set(result.aggregate) == set(doc["aggregate"]) >= {"beats_coverage", "beats_hit"}
        for name, summary in doc["aggregate"].items():
            assert result.aggregate[name]["value"] == summary["value"], name
            assert result.aggregate[name]["n"] == summary["n"] == 4
        cols = ("id", "gt_bins", "pred_bins", "hit_bins", "beats_coverage", "beats_hit")
        assert [{c: r[c] for c in cols} for r in result.per_clip] == [{c: r[c] for c in cols} for r in doc["per_clip"]]
    # the CLI wrote exactly what the object serialises to, apart from the run's own time stamp
    again = first.to_dict()
    assert again["aggregate"] == doc["aggregate"] and again["excluded"] == doc["excluded"]


def test_the_result_object_writes_what_the_cli_writes(demo, tmp_path):
    result = d2m_bench.evaluate(demo / "generated", demo / "gt", workers=1)
    result.write_json(tmp_path / "r.json")
    result.write_csv(tmp_path / "r.csv")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["complete"] is True and doc["inputs"]["n_pairs"] == 4
    assert (tmp_path / "r.csv").read_text().count("\n") == 5  # header + one row per pair
    assert "beats_coverage" in result.table()


def test_evaluate_takes_a_protocol_object_and_overrides(demo):
    proto = d2m_bench.load_protocol("d2m-aistpp-2s")
    result = d2m_bench.evaluate(demo / "generated", demo / "gt", protocol=proto, workers=1,
                                overrides={"beats.bin_seconds": 2.0})
    assert result.protocol.get("beats.bin_seconds") == 2.0 and result.protocol.hash != proto.hash
    # 2-s clips in one 2-s bin: a clip with any gt onset and any pred onset covers it fully
    for r in result.per_clip:
        assert r["gt_bins"] == 1 and r["beats_coverage"] == r["pred_bins"]


def _api():
    from d2m_bench.metrics import alignment, beats, fad, retrieval
    from d2m_bench.results.result import EvalResult

    funcs = [d2m_bench.evaluate, d2m_bench.load_protocol, d2m_bench.available_protocols, d2m_bench.aggregate,
             EvalResult.to_dict, EvalResult.write_json, EvalResult.write_csv, EvalResult.table]
    for module in (alignment, beats, fad, retrieval):
        funcs += [f for name, f in vars(module).items()
                  if inspect.isfunction(f) and f.__module__ == module.__name__ and not name.startswith("_")]
    return funcs


@pytest.mark.parametrize("func", _api(), ids=lambda f: f.__qualname__)
def test_public_functions_are_typed_and_documented(func):
    from d2m_bench.data.dataset import Dataset

    hints = typing.get_type_hints(func, localns={"Dataset": Dataset})
    params = [p for p in inspect.signature(func).parameters.values()
              if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    untyped = [p.name for p in params if p.name not in hints]
    assert untyped == [], f"{func.__qualname__}: untyped parameters"
    assert "return" in hints, f"{func.__qualname__}: no return type"
    assert (func.__doc__ or "").strip(), f"{func.__qualname__}: no docstring"


def test_the_metric_examples_in_docs_api_hold():
    """The numbers docs/api.md shows, worked out by hand there."""
    import numpy as np

    from d2m_bench.metrics import beats
    from d2m_bench.metrics.fad import frechet_audio_distance

    gt = beats.event_bins([0.10, 0.52, 1.40], n=2)
    pred = beats.event_bins([0.31], n=2)
    assert gt.tolist() == [1, 1] and pred.tolist() == [1, 0]
    assert beats.coverage_hit_d2m(gt, pred) == {"gt_bins": 2, "pred_bins": 1, "hit_bins": 1,
                                                 "beats_coverage": 0.5, "beats_hit": 0.5}
    s = beats.tolerance_scores([0.10, 0.52, 1.40], [0.12, 0.90], window=0.07)
    assert (s["matched"], s["precision"], s["recall"]) == (1, 0.5, pytest.approx(1 / 3))
    assert s["f_measure"] == pytest.approx(0.4)
    x = np.random.default_rng(0).normal(size=(500, 8))
    assert frechet_audio_distance(x, x + 0.5) == pytest.approx(8 * 0.5 ** 2, abs=1e-9)
