"""Pairing rules and every bad-input case, through the CLI: one line naming the file, exit 2,
no result file written."""
import json

import numpy as np
import pytest
import soundfile as sf

from d2m_bench.io.pairing import pair_directories, pair_manifest
from d2m_bench.errors import UserError
from d2m_bench.synth.synthetic import click_track

SR = 22050


def write(path, y=None, sr=SR, subtype="PCM_16"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), click_track([0.3, 1.3]) if y is None else y, sr, subtype=subtype)
    return path


def folders(tmp_path, gt_ids, pred_ids, gt_fmt="{}", pred_fmt="{}"):
    for i in gt_ids:
        write(tmp_path / "gt" / f"{gt_fmt.format(i)}.wav")
    for i in pred_ids:
        write(tmp_path / "pred" / f"{pred_fmt.format(i)}.wav")
    return tmp_path / "pred", tmp_path / "gt"


def test_pairing_by_stem_in_natural_order(tmp_path):
    pred, gt = folders(tmp_path, ["c10", "c2", "c1"], ["c1", "c10", "c2"])
    p = pair_directories(gt, pred)
    assert p.rule == "stem" and [x.id for x in p.pairs] == ["c1", "c2", "c10"]
    assert all(x.gt.stem == x.pred.stem for x in p.pairs)


def test_pairing_upstream_generation_names(tmp_path):
    pred, gt = folders(tmp_path, [1, 2, 10], [10, 1, 2], "original_{}", "generated_{}")
    p = pair_directories(gt, pred)
    assert p.rule == "generation" and [x.id for x in p.pairs] == ["1", "2", "10"]
    assert p.pairs[2].gt.name == "original_10.wav" and p.pairs[2].pred.name == "generated_10.wav"


def test_pairing_manifest(tmp_path):
    write(tmp_path / "a" / "x.wav")
    write(tmp_path / "b" / "totally_other_name.wav")
    m = tmp_path / "m.csv"
    m.write_text("id,gt,pred\nclip1,a/x.wav,b/totally_other_name.wav\n")
    p = pair_manifest(m)
    assert p.rule == "manifest" and p.pairs[0].id == "clip1" and p.pairs[0].pred.name == "totally_other_name.wav"


def test_missing_extra_duplicate_ids_are_listed(tmp_path):
    pred, gt = folders(tmp_path, ["a", "b", "c"], ["a", "b", "z"])
    with pytest.raises(UserError) as e:
        pair_directories(gt, pred)
    assert "extra ids in pred, not in gt: 1 (z)" in str(e.value) and "missing predictions for gt ids: 1 (c)" in str(e.value)
    write(tmp_path / "pred" / "a.flac")
    with pytest.raises(UserError, match="duplicate ids in pred.*a: a.flac, a.wav"):
        pair_directories(gt, pred)


def test_allow_missing_lists_them(tmp_path):
    pred, gt = folders(tmp_path, ["a", "b", "c"], ["a", "b"])
    p = pair_directories(gt, pred, allow_missing=True)
    assert [x.id for x in p.pairs] == ["a", "b"] and p.missing == ["c"]


def _bad(cli, tmp_path, *args, expect):
    out = tmp_path / "out.json"
    proc = cli("eval", *args, "--out", out, "-q")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert expect in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


def test_bad_directories(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    write(tmp_path / "gt" / "a.wav")
    _bad(cli, tmp_path, "--pred", tmp_path / "nope", "--gt", tmp_path / "gt", expect="nope: pred directory does not exist")
    _bad(cli, tmp_path, "--pred", tmp_path / "empty", "--gt", tmp_path / "gt", expect="empty: pred directory has no audio")


def test_unreadable_truncated_zero_length_and_nonfinite_files(tmp_path, cli):
    write(tmp_path / "gt" / "a.wav")
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "a.wav").write_bytes(b"RIFF\x00\x00garbage that is not a wave file")
    _bad(cli, tmp_path, "--pred", pred, "--gt", tmp_path / "gt", expect="pred/a.wav: unreadable audio")

    full = write(tmp_path / "tmp" / "t.wav")
    (pred / "a.wav").write_bytes(full.read_bytes()[: 44 + 2 * 10000])  # header still says 44100 frames
    _bad(cli, tmp_path, "--pred", pred, "--gt", tmp_path / "gt", expect="pred/a.wav: truncated file")

    write(pred / "a.wav", np.zeros(0, np.float32))
    _bad(cli, tmp_path, "--pred", pred, "--gt", tmp_path / "gt", expect="pred/a.wav: zero-length audio")

    (pred / "a.wav").write_bytes(b"")
    _bad(cli, tmp_path, "--pred", pred, "--gt", tmp_path / "gt", expect="pred/a.wav: empty file")

    y = click_track([0.3])
    y[100] = np.nan
    write(pred / "a.wav", y, subtype="FLOAT")
    _bad(cli, tmp_path, "--pred", pred, "--gt", tmp_path / "gt", expect="pred/a.wav: contains NaN or inf")
    y[100] = np.inf
    write(pred / "a.wav", y, subtype="FLOAT")
    _bad(cli, tmp_path, "--pred", pred, "--gt", tmp_path / "gt", expect="contains NaN or inf")


def test_mismatched_ids_and_unknown_protocol(tmp_path, cli):
    pred, gt = folders(tmp_path, ["a", "b"], ["a", "c"])
    line = _bad(cli, tmp_path, "--pred", pred, "--gt", gt, expect="extra ids in pred")
    assert "missing predictions for gt ids: 1 (b)" in line
    pred, gt = folders(tmp_path / "ok", ["a"], ["a"])
    _bad(cli, tmp_path, "--pred", pred, "--gt", gt, "--protocol", "no-such", expect="unknown protocol 'no-such'")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[audio\n")
    _bad(cli, tmp_path, "--pred", pred, "--gt", gt, "--protocol", bad, expect="bad.toml: invalid TOML")


def test_allow_missing_through_cli(tmp_path, cli):
    pred, gt = folders(tmp_path, ["a", "b"], ["a"])
    out = tmp_path / "r.json"
    proc = cli("eval", "--pred", pred, "--gt", gt, "--allow-missing", "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["inputs"]["n_pairs"] == 1
    assert {"id": "b", "reason": "missing prediction (allowed by --allow-missing)"} in doc["excluded"]["clips"]


def test_help_does_not_import_heavy_modules(cli):
    import subprocess
    import sys

    code = ("import sys; from d2m_bench.cli import cli; from click.testing import CliRunner; "
            "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0; "
            "print(sorted(m for m in ('torch', 'librosa', 'numpy', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
