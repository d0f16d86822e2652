"""Property-based fuzzing (issue 13, deliverable 8) of the eval protocol loader, the manifest reader
and the leaderboard reader: for any input, a one-line UserError or a valid result; never
another exception, never a write outside OUT."""
import copy
import json
import math
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d2m_bench.errors import UserError
from d2m_bench.resources import shipped_dir

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _one_line(exc: UserError) -> None:
    assert "\n" not in str(exc) and str(exc).strip(), repr(str(exc))


def _files(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- a small TOML writer (inline tables), enough to render any JSON-like value -------------------

def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        text = repr(v)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def _toml(doc: dict) -> str:
    return "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in doc.items())


# --- protocol loader ---------------------------------------------------------------------------

def _base_protocol() -> dict:
    import tomllib

    return tomllib.loads((shipped_dir("protocols") / "d2m-aistpp-2s.toml").read_text())


def _paths(node, prefix=()):
    for k, v in node.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


# The values that broke eval (issue 13) drawn often; any other value of any type drawn too.
SPECIAL = st.sampled_from([math.nan, math.inf, -math.inf, 1e-300, 1e300, 0.0, -1.0, 0, -1, 10**10, 2**63 - 1])
VALUES = st.one_of(SPECIAL, SPECIAL, SPECIAL, st.floats(), st.integers(min_value=-2**63, max_value=2**63 - 1),
                   st.text(max_size=6), st.booleans(), st.lists(st.integers(-5, 5), max_size=3),
                   st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2))


@st.composite
def mutated_protocols(draw):
    doc = copy.deepcopy(_base_protocol())
    for _ in range(draw(st.integers(1, 4))):
        paths = sorted(_paths(doc))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        if op == "replace":
            parent[path[-1]] = draw(VALUES)
        elif op == "delete":
            del parent[path[-1]]
        else:
            parent[draw(st.text(min_size=1, max_size=6))] = draw(VALUES)
    return doc


def _finite_numbers(node) -> bool:
    if isinstance(node, dict):
        return all(_finite_numbers(v) for v in node.values())
    if isinstance(node, list):
        return all(_finite_numbers(v) for v in node)
    return not isinstance(node, float) or math.isfinite(node)


@FAST
@given(mutated_protocols())
def test_protocol_loader_accepts_only_valid_finite_protocols(doc):
    from d2m_bench.protocol import load_protocol

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.toml"
        path.write_text(_toml(doc), encoding="utf-8", errors="surrogatepass")
        try:
            proto = load_protocol(path).validate_eval()
        except UserError as exc:
            _one_line(exc)
            return
        assert _finite_numbers(proto.params)
        assert set(_files(Path(tmp))) == {path}


@FAST
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_protocol_loader_on_arbitrary_bytes(raw):
    from d2m_bench.protocol import load_protocol

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.toml"
        path.write_bytes(raw)
        try:
            load_protocol(path).validate_eval()
        except UserError as exc:
            _one_line(exc)


# --- manifest reader ---------------------------------------------------------------------------

CELL = st.one_of(st.sampled_from(["a.wav", "b.wav", "sub/c.wav", "missing.wav", "", " a.wav ", "../a.wav", "."]),
                 st.text(max_size=8))


@st.composite
def manifests(draw):
    if draw(st.booleans()):
        return draw(st.text(max_size=200))
    header = draw(st.sampled_from(["id,gt,pred", "id,gt,pred,genre", "gt,pred", "\ufeffid,gt,pred", " id , gt , pred"]))
    rows = draw(st.lists(st.tuples(st.text(max_size=5), CELL, CELL), max_size=6))
    return header + "\n" + "".join(f"{json.dumps(i)},{json.dumps(g)},{json.dumps(p)}\n" for i, g, p in rows)


@FAST
@given(manifests(), st.booleans())
def test_manifest_reader_gives_existing_pairs_or_one_line(text, allow_missing):
    from d2m_bench.io.pairing import pair_manifest

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("a.wav", "b.wav", "sub/c.wav"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(b"RIFF")
        manifest = root / "m.csv"
        manifest.write_text(text, encoding="utf-8", errors="surrogatepass")
        before = _files(root)
        try:
            pairing = pair_manifest(manifest, allow_missing=allow_missing)
        except UserError as exc:
            _one_line(exc)
        else:
            ids = [p.id for p in pairing.pairs]
            assert len(ids) == len(set(ids)) and all(i.strip() for i in ids)
            assert all(Path(p.gt).is_file() and Path(p.pred).is_file() for p in pairing.pairs)
        assert _files(root) == before  # a reader writes nothing


# --- leaderboard reader ------------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8)
ROW = st.fixed_dictionaries(
    {"system": st.sampled_from(["A", "B"]) | JSON, "protocol": st.just("p") | JSON, "protocol_hash": st.just("h") | JSON,
     "metric": st.sampled_from(["beats_hit", "fad"]) | JSON, "value": st.floats() | st.integers() | JSON},
    optional={"unit": st.sampled_from(["fraction", "percent", ""]) | JSON, "higher_is_better": st.booleans() | JSON,
              "n": st.integers(0, 9) | JSON, "comparable_key": st.just("") | JSON})
RUN = st.one_of(JSON, st.fixed_dictionaries({"complete": st.just(True) | JSON, "leaderboard": st.lists(ROW | JSON, max_size=4)},
                                            optional={"created": JSON, "inputs": JSON}))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RUN, min_size=1, max_size=3), st.booleans())
def test_leaderboard_reader_ranks_only_finite_numbers(runs, strict):
    from d2m_bench.results.leaderboard import write_leaderboard

    with tempfile.TemporaryDirectory() as tmp:
        results, out = Path(tmp) / "results", Path(tmp) / "out"
        (results / "runs").mkdir(parents=True)
        for i, doc in enumerate(runs):
            (results / "runs" / f"r{i}.json").write_text(json.dumps(doc))  # allow_nan: NaN/Infinity literals
        before = _files(results)
        try:
            rows = write_leaderboard(results, out / "lb.csv", out / "lb.md", notes=[], shipped=False, strict=strict)
        except UserError as exc:
            _one_line(exc)
            assert not out.exists()
        else:
            assert all(isinstance(r["value"], float) and math.isfinite(r["value"]) for r in rows)
            assert all(isinstance(r[k], str) and r[k] for r in rows for k in ("system", "metric", "protocol"))
            assert set(_files(out)) == {out / "lb.csv", out / "lb.md"}
        assert _files(results) == before


# --- cache entries -----------------------------------------------------------------------------

@FAST
@given(st.binary(max_size=400), st.booleans())
def test_cache_entry_reader_gives_finite_numbers_or_a_miss(raw, as_zip):
    """Whatever bytes sit under an entry's name (a zip holding other arrays included), get()
    returns a finite numeric array or None (a miss), and raises nothing."""
    import io
    import warnings

    import numpy as np

    from d2m_bench.io.cache import FileCache

    with tempfile.TemporaryDirectory() as tmp:
        cache = FileCache("fuzz", Path(tmp))
        key = "f" * 64
        path = cache._path(key)
        path.parent.mkdir(parents=True)
        if as_zip:  # a well-formed npz whose arrays are the fuzz bytes
            buf = io.BytesIO()
            np.savez(buf, data=np.frombuffer(raw, np.uint8), check=np.frombuffer(raw[:32], np.uint8))
            raw = buf.getvalue()
        path.write_bytes(raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = cache.get(key)
        assert got is None or (got.dtype.kind in "biuf" and np.isfinite(got).all())
