"""Issue 13 failure 10: MOS protocol files were barely validated (tracebacks, `z_threshold = nan`
silently turned outlier screening off, unknown keys accepted). Plus fuzzing of the MOS protocol
loader and the ratings CSV reader: a one-line UserError or a valid result, never another exception.
"""
import csv
import io
import json
import math
import string

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d2m_bench.errors import UserError
from d2m_bench.mos.aggregate import aggregate
from d2m_bench.mos.ratings import COLUMNS, read_ratings
from d2m_bench.protocol import load_protocol
from d2m_bench_tests.conftest import run_cli

SHIPPED = load_protocol("mos-p808")


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string with \uXXXX escapes is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


def write_protocol(path, tables: dict, *, top=None):
    """A `command = "mos"` protocol file from ``{table: {key: value}}`` (values: TOML scalars, lists)."""
    lines = ['name = "attack"', 'command = "mos"', *(f"{k} = {_toml_value(v)}" for k, v in (top or {}).items())]
    for table, keys in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def shipped_with(section, key, value):
    tables = {k: dict(v) for k, v in SHIPPED.params.items()}
    tables.setdefault(section, {})[key] = value
    return tables


def ratings_csv(path):
    """Two raters x two systems x two items, quality: a file every valid protocol can aggregate."""
    rows = ["rater,item,system,aspect,score,playback_complete"]
    for r, scores in (("r1", (4, 5, 2, 3)), ("r2", (3, 4, 2, 2)), ("r3", (5, 4, 1, 3))):
        for (sys_, item), sc in zip((("A", "i1"), ("A", "i2"), ("B", "i1"), ("B", "i2")), scores):
            rows.append(f"{r},{item},{sys_},quality,{sc},1")
    path.write_text("\n".join(rows) + "\n")
    return path


# --- explicit cases -----------------------------------------------------------------------------
def test_shipped_protocol_is_valid():
    from d2m_bench.mos.protocol_check import validate_mos

    validate_mos(SHIPPED)


BAD = [
    ("screening", "z_threshold", math.nan, "z_threshold = nan must be a finite number"),
    ("screening", "z_threshold", math.inf, "must be a finite number"),
    ("screening", "z_threshold", 0, "must be a finite number > 0"),
    ("screening", "z_threshold", "3.29", "must be a finite number"),
    ("screening", "max_outlier_fraction", 1.5, "in [0, 1]"),
    ("screening", "max_trap_failures", -1, "must be an integer >= 0"),
    ("screening", "max_trap_failures", 0.5, "must be an integer"),
    ("screening", "flat_min_ratings", 0, "must be an integer >= 1"),
    ("screening", "require_playback_complete", 1, "must be true or false"),
    ("screening", "reference_min_score", -math.inf, "must be a finite number"),
    ("screening", "z_treshold", 3.0, "unknown key(s) in [screening]: 'z_treshold'"),
    ("stats", "bootstrap", 0, "must be an integer in [1, 1000000]"),
    ("stats", "bootstrap", 10 ** 7, "must be an integer in [1, 1000000]"),
    ("stats", "bootstrap", True, "must be an integer"),
    ("stats", "seed", -1, "stats.seed = -1"),
    ("stats", "seed", 10 ** 400, "stats.seed"),
    ("stats", "ci_level", 1.0, "in (0, 1)"),
    ("stats", "alpha", math.nan, "stats.alpha = nan"),
    ("stats", "krippendorff_level", "cardinal", "not one of nominal, ordinal, interval, ratio"),
    ("stats", "pairwise_test", "t_test", "not one of wilcoxon_item_means"),
    ("stats", "bootstrap_reps", 100, "unknown key(s) in [stats]"),
    ("scale", "max", 1, "scale.min = 1 must be below scale.max = 1"),
    ("scale", "min", 0.5, "whole-number ends"),
    ("scale", "min", 10 ** 400, "scale.min"),
    ("scale", "integer", "yes", "must be true or false"),
    ("extra", "x", 1, "unknown table(s) or key(s) 'extra'"),
]


@pytest.mark.parametrize("section,key,value,message", BAD, ids=[f"{s}.{k}={v!r}"[:40] for s, k, v, _ in BAD])
def test_bad_value_is_a_one_line_error_before_any_rating_is_read(tmp_path, section, key, value, message):
    proto = write_protocol(tmp_path / "p.toml", shipped_with(section, key, value))
    with pytest.raises(UserError) as exc:
        aggregate(tmp_path / "no-such-ratings.csv", protocol=proto)  # the protocol fails first
    text = str(exc.value)
    assert text.startswith(str(proto)) and message in text and "\n" not in text, text


def test_top_level_unknown_key_and_non_table(tmp_path):
    proto = write_protocol(tmp_path / "p.toml", {"stats": {"seed": 1}}, top={"bootstrap": 10})
    with pytest.raises(UserError, match="unknown table.*bootstrap"):
        aggregate(tmp_path / "r.csv", protocol=proto)
    proto = write_protocol(tmp_path / "q.toml", {}, top={"stats": 5})
    with pytest.raises(UserError, match="'stats' must be a table"):
        aggregate(tmp_path / "r.csv", protocol=proto)


def test_nan_z_threshold_no_longer_disables_screening_silently(tmp_path, cli=run_cli):
    proto = write_protocol(tmp_path / "p.toml", shipped_with("screening", "z_threshold", math.nan))
    res = cli("mos", "aggregate", ratings_csv(tmp_path / "r.csv"), "--protocol", proto, "--out-dir", tmp_path / "o")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "z_threshold = nan" in res.stderr and str(proto) in res.stderr
    assert not (tmp_path / "o").exists()


def test_cli_seed_override_is_validated(tmp_path):
    res = run_cli("mos", "aggregate", ratings_csv(tmp_path / "r.csv"), "--seed", -5, "--out-dir", tmp_path / "o")
    assert res.returncode == 2 and "stats.seed = -5" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_eval_protocol_is_refused_by_mos(tmp_path):
    with pytest.raises(UserError, match="is a eval protocol|is an eval protocol|eval protocol"):
        aggregate(ratings_csv(tmp_path / "r.csv"), protocol="d2m-aistpp-2s")


def test_valid_user_protocol_changes_what_it_says(tmp_path):
    """A user file with a stricter threshold is accepted and used (values within range pass)."""
    proto = write_protocol(tmp_path / "p.toml", shipped_with("screening", "z_threshold", 1.0))
    doc = aggregate(ratings_csv(tmp_path / "r.csv"), protocol=proto, n_boot=20)
    assert doc["screening"]["summary"]["params"]["z_threshold"] == 1.0


# --- fuzzing --------------------------------------------------------------------------------------
KEYS = {"scale": ["min", "max", "integer"],
        "screening": ["trap_tolerance", "max_trap_failures", "gold_tolerance", "max_gold_failures",
                      "reference_min_score", "reference_max_fail_fraction", "flat_max_variance", "flat_min_ratings",
                      "require_playback_complete", "max_incomplete_fraction", "z_threshold", "max_outlier_fraction"],
        "stats": ["ci_level", "bootstrap", "seed", "pairwise_test", "correction", "alpha", "krippendorff_level"]}
scalars = st.one_of(st.booleans(), st.integers(-10, 10), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(0, 1), st.sampled_from(["holm", "interval", "ordinal", "wilcoxon_item_means", "x"]),
                    st.text(max_size=5))
values = st.one_of(scalars, st.lists(scalars, max_size=3))
tables = st.dictionaries(
    st.sampled_from([*KEYS, "extra"]),
    st.dictionaries(st.one_of(st.sampled_from(sum(KEYS.values(), [])), st.text(string.ascii_lowercase, min_size=1,
                                                                                max_size=6)), values, max_size=5),
    max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tables=tables)
def test_fuzz_mos_protocol_loader(tmp_path, tables):
    proto = write_protocol(tmp_path / "fuzz.toml", tables)
    try:
        doc = aggregate(ratings_csv(tmp_path / "r.csv"), protocol=proto, n_boot=10)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    # Accepted: every setting it holds is in range, and the result is well formed.
    for table, keys in tables.items():
        assert table in KEYS and set(keys) <= set(KEYS[table])
    assert doc["complete"] and {s["system"] for s in doc["systems"]} <= {"A", "B"}


cells = st.one_of(st.sampled_from(["", "1", "3", "5", "0", "6", "2.5", "nan", "inf", "-1", "true", "no", "x",
                                   "r1", "r2", "i1", "A", "B", "quality", " 4 ", "1e400"]),
                  st.text(max_size=6))
headers = st.one_of(st.just(list(COLUMNS)), st.permutations(list(COLUMNS[:9])),
                    st.lists(st.sampled_from([*COLUMNS, "junk", ""]), min_size=1, max_size=10))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=headers, rows=st.lists(st.lists(cells, min_size=0, max_size=12), max_size=8),
       bom=st.booleans(), raw_tail=st.binary(max_size=8))
def test_fuzz_ratings_csv_reader(tmp_path, header, rows, bom, raw_tail):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    data = (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("utf-8") + raw_tail
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    try:
        df = read_ratings(path)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
        return
    assert isinstance(df, pd.DataFrame) and len(df) > 0
    assert df["score"].between(1, 5).all() and (df["score"] == np.round(df["score"])).all()
    assert not df.duplicated(["rater", "item", "system", "aspect"]).any()
    for c in ("rater", "item", "system", "aspect"):
        assert (df[c].str.len() > 0).all()


# --- memory: the bootstrap in small steps gives the numbers of the all-at-once computation ------------
def test_bootstrap_in_one_replicate_steps_equals_all_counts_drawn_at_once(monkeypatch):
    from d2m_bench.mos import stats

    rng = np.random.default_rng(4)
    n, n_r, n_i, n_boot, seed = 400, 37, 11, 300, [2, 99]
    s = rng.integers(1, 6, n).astype(np.float64)
    ri, ii = rng.integers(0, n_r, n), rng.integers(0, n_i, n)
    ri[0], ii[0] = n_r - 1, n_i - 1
    # The computation before issue 13, written out: every count drawn up front, one matrix.
    g = np.random.default_rng(seed)
    rc = g.multinomial(n_r, np.full(n_r, 1 / n_r), size=n_boot).astype(np.float64)
    ic = g.multinomial(n_i, np.full(n_i, 1 / n_i), size=n_boot).astype(np.float64)
    w = rc[:, ri] * ic[:, ii]
    tot = w.sum(axis=1)
    means = (w[tot > 0] @ s) / tot[tot > 0]
    lo, hi = np.percentile(means, [2.5, 97.5])
    monkeypatch.setattr(stats, "BOOT_BYTES", 8 * n)  # one replicate per step
    got = stats.bootstrap_two_way(s, ri, ii, n_boot=n_boot, seed=seed)
    assert got["n_valid"] == int((tot > 0).sum())
    assert got["low"] == pytest.approx(lo, rel=1e-13, abs=0) and got["high"] == pytest.approx(hi, rel=1e-13, abs=0)
