"""The evaluation pipeline's shape: one section interface, a registry, no import loops, and the
docs' worked example of a new metric family running inside a real eval."""
import ast
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import d2m_bench
from d2m_bench import sections
from d2m_bench.evaluation import evaluate
from d2m_bench.io.audio import write_audio
from d2m_bench.synth.synthetic import click_track

ROOT = Path(__file__).resolve().parents[1]
INTERFACE = ("NAME", "enabled", "check", "score")


@pytest.mark.parametrize("name", sections.REGISTRY)
def test_every_registered_section_has_the_interface(name):
    mod = sections.section(name)
    assert mod.NAME == name
    assert all(callable(getattr(mod, a)) for a in INTERFACE[1:])
    assert (name in sections.TABLELESS) != hasattr(mod, "validate")
    assert hasattr(mod, "pair_step") == hasattr(mod, "run_pair")


def _import_graph(package_dir: Path) -> dict:
    """module -> the d2m_bench modules it imports anywhere (relative and absolute, any depth)."""
    mods = {}
    for path in package_dir.rglob("*.py"):
        rel = path.relative_to(package_dir.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        mods[name] = path
    graph = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = name if is_pkg else name.rsplit(".", 1)[0]
                for _ in range(max(node.level - 1, 0)):
                    base = base.rsplit(".", 1)[0]
                mod = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
                cands = [f"{mod}.{a.name}" for a in node.names] + [mod]
            elif isinstance(node, ast.Import):
                cands = [a.name for a in node.names]
            else:
                continue
            for t in cands:
                while t and t not in mods:
                    t = t.rsplit(".", 1)[0] if "." in t else ""
                if t and t != name and mods[t].name != "__init__.py":
                    targets.add(t)
        graph[name] = targets
    return graph


def test_no_module_imports_one_that_imports_it_back():
    graph = _import_graph(ROOT / "d2m_bench")
    loops = []
    for a, targets in graph.items():
        for b in targets:  # a -> b and b reaches a again
            seen, todo = set(), [b]
            while todo:
                m = todo.pop()
                if m == a:
                    loops.append((a, b))
                    break
                if m not in seen:
                    seen.add(m)
                    todo += graph.get(m, ())
    assert not loops, loops


def test_protocol_validation_imports_no_metric_code_it_does_not_enable():
    code = ("import sys; from d2m_bench.protocol import load_protocol\n"
            "load_protocol('d2m-aistpp-2s').validate_eval()\n"
            "print(sorted(m for m in sys.modules if m.startswith(('librosa', 'torch', 'scipy.signal', "
            "'d2m_bench.metrics.alignment', 'd2m_bench.embedders', 'd2m_bench.metrics.fad'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _example_module():
    """The first Python block of docs/development.md after its 'Adding a metric family' heading."""
    text = (ROOT / "docs" / "development.md").read_text()
    block = re.search(r"## Adding a metric family.*?```python\n(.*?)```", text, re.S).group(1)
    mod = types.ModuleType("d2m_bench.sections.onset_rate")
    mod.__package__ = "d2m_bench.sections"
    exec(compile(block, "docs/development.md", "exec"), mod.__dict__)
    return mod


def test_development_example_section(tmp_path, monkeypatch):
    mod = _example_module()
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(sections, "REGISTRY", sections.REGISTRY[:-1] + ("onset_rate", "sanity"))
    sr = 22050
    clicks = {"a": ([0.25, 0.75, 1.25, 1.75], [0.5, 1.5]),  # 2 onsets/s in the gt, 1 in the prediction
              "b": ([0.5, 1.5], [0.5, 1.5])}
    for cid, (gt, pred) in clicks.items():
        write_audio(tmp_path / "gt" / f"{cid}.wav", click_track(gt, sr=sr), sr)
        write_audio(tmp_path / "pred" / f"{cid}.wav", click_track(pred, sr=sr), sr)
    toml = (ROOT / "protocols" / "d2m-aistpp-2s.toml").read_text()
    proto = tmp_path / "onset-rate.toml"
    proto.write_text(re.sub(r'^name = ".*"$', 'name = "onset-rate"', toml, count=1, flags=re.M)
                     + "\n[onset_rate]\nenabled = true\n")
    res = evaluate(tmp_path / "pred", tmp_path / "gt", protocol=proto, workers=1, cache=False)
    assert [len(r["gt_events"]) for r in res.per_clip] == [4, 2]  # the clicks are what the detector sees
    assert [r["onset_rate_ratio"] for r in res.per_clip] == [0.5, 1.0]
    assert res.aggregate["onset_rate_ratio"]["value"] == 0.75
    assert res.sections["onset_rate"]["meta"] == {"min_gt_onsets": 1}
    assert list(res.sections)[-1] == "sanity"  # registry order: the new family before sanity
    with pytest.raises(d2m_bench.errors.UserError, match="onset_rate.min_gt_onsets"):
        evaluate(tmp_path / "pred", tmp_path / "gt", protocol=proto, workers=1, cache=False,
                 overrides={"onset_rate.min_gt_onsets": 0})


def test_each_file_is_decoded_once(tmp_path, monkeypatch):
    """Onsets and sanity levels come from one decode per file (the sanity section used to
    decode every file a second time in the parent)."""
    from d2m_bench.io import audio

    sr = 22050
    for cid in ("a", "b"):
        write_audio(tmp_path / "gt" / f"{cid}.wav", click_track([0.5, 1.5], sr=sr), sr)
        write_audio(tmp_path / "pred" / f"{cid}.wav", click_track([0.5], sr=sr), sr)
    calls = []
    real = audio.decode_audio
    monkeypatch.setattr(audio, "decode_audio", lambda path: calls.append(Path(path).name) or real(path))
    res = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1, cache=False)
    assert sorted(calls) == ["a.wav", "a.wav", "b.wav", "b.wav"]
    assert res.sections["sanity"]["status"] == "ok" and "pred_rms_dbfs" in res.per_clip[0]


def test_a_cached_run_decodes_nothing(tmp_path, monkeypatch):
    from d2m_bench.io import audio

    monkeypatch.setenv("D2M_BENCH_CACHE", str(tmp_path / "cache"))
    sr = 22050
    for cid in ("a", "b", "c", "d", "e"):
        write_audio(tmp_path / "gt" / f"{cid}.wav", click_track([0.5, 1.5], sr=sr), sr)
        write_audio(tmp_path / "pred" / f"{cid}.wav", click_track([0.5], sr=sr, seed=1), sr)
    first = evaluate(tmp_path / "pred", tmp_path / "gt", workers=2)
    monkeypatch.setattr(audio, "decode_audio", lambda path: pytest.fail(f"decoded {path}"))
    second = evaluate(tmp_path / "pred", tmp_path / "gt", workers=2)
    assert all(r["cached"] for r in second.per_clip)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "cached"} for r in rows]
    assert strip(second.per_clip) == strip(first.per_clip)
    assert second.sections["sanity"] == first.sections["sanity"]
