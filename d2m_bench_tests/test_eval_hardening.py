"""Audit fixes of the eval core: self-pairing, truncated mp3s, unreadable files and caches,
protocol validation, per-clip audio provenance, the cache key, stale result files.

Every bad-input case goes through the CLI and checks one stderr line, exit code 2 and that an
earlier result file at --out is gone (a failed run must not leave a complete-looking result).
"""
import json
import os

import numpy as np
import pytest
import soundfile as sf

from d2m_bench.features import events
from d2m_bench.evaluation import evaluate
from d2m_bench.metrics.beats import N_FFT
from d2m_bench.protocol import available_protocols, load_protocol
from d2m_bench.synth.synthetic import click_track

SR = 22050
BOTH = [0.3, 1.3]  # one click in each of the two 1-s bins


def write(path, y=None, sr=SR, subtype="PCM_16", **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), click_track(BOTH) if y is None else y, sr, subtype=subtype, **kw)
    return path


def bad(cli, tmp_path, *args, expect):
    out = tmp_path / "out.json"
    out.write_text('{"complete": true, "stale": "from an earlier run"}\n')
    proc = cli("eval", *args, "--out", out, "-q")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    # warnings (e.g. predictions that are byte copies of the gt, as these fixtures are) are not the error
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("d2m-bench: warning:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert expect in lines[0], lines[0]
    assert not out.exists(), "a stale result survived a failed run"
    return lines[0]


def ok(cli, *args):
    proc = cli("eval", *args, "-q")
    assert proc.returncode == 0, proc.stderr
    return proc


# 1. one folder given as both --pred and --gt -------------------------------------------------

def test_upstream_single_folder_pairs_original_with_generated(tmp_path, cli):
    # generate_aist.py writes original_N, vqvae_N and generated_N side by side. Generated clips
    # click only in second 0 (coverage = hit = 0.5 against the originals); scoring any file
    # against itself would give 1.0.
    u = tmp_path / "u"
    for i in range(3):
        write(u / f"original_{i}.wav")
        write(u / f"vqvae_{i}.wav")
        write(u / f"generated_{i}.wav", click_track([0.3]))
    out = tmp_path / "r.json"
    proc = ok(cli, "--pred", u, "--gt", u, "--out", out)
    doc = json.loads(out.read_text())
    assert doc["inputs"]["pairing_rule"] == "generation" and doc["inputs"]["n_pairs"] == 3
    for r in doc["per_clip"]:
        assert r["gt"].endswith(f"original_{r['id']}.wav") and r["pred"].endswith(f"generated_{r['id']}.wav")
        assert (r["beats_coverage"], r["beats_hit"]) == (0.5, 0.5)
    notes = " | ".join(doc["warnings"])
    assert "gt" in notes and "6 file(s) not named original_N" in notes and "vqvae_0.wav" in notes
    assert "6 file(s) not named generated_N" in notes
    assert "not named original_N" in proc.stderr  # -q still shows the note, on stderr


def test_same_file_as_gt_and_pred_is_refused(tmp_path, cli):
    u = tmp_path / "u"
    write(u / "a.wav")
    write(u / "b.wav")
    line = bad(cli, tmp_path, "--pred", u, "--gt", u, expect="gt and pred are the same file")
    assert "2 (a, b)" in line
    m = tmp_path / "m.csv"
    m.write_text("id,gt,pred\na,u/a.wav,u/../u/a.wav\nb,u/b.wav,u/a.wav\n")  # two spellings of one file
    line = bad(cli, tmp_path, "--manifest", m, expect="gt and pred are the same file")
    assert "1 (a)" in line and "m.csv" in line


# 2. truncated and damaged mp3 ----------------------------------------------------------------

def _mp3(path, y=None):
    if "MP3" not in sf.available_formats():
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} here cannot write MP3 (needs >= 1.1.0 with LAME)")
    return write(path, y, format="MP3", subtype="MPEG_LAYER_III")


def test_truncated_and_garbage_mp3(tmp_path, cli):
    from d2m_bench.io.audio import read_audio

    whole = _mp3(tmp_path / "whole.mp3")
    y, sr, info = read_audio(whole)  # the intact file is not mistaken for a truncated one
    assert len(y) == 2 * SR and info.native_samples == 2 * SR
    write(tmp_path / "gt" / "a.wav")
    pred = tmp_path / "pred"
    pred.mkdir()
    data = whole.read_bytes()
    (pred / "a.mp3").write_bytes(data[: len(data) // 2])
    line = bad(cli, tmp_path, "--pred", pred, "--gt", tmp_path / "gt", expect="pred/a.mp3: truncated file")
    assert f"of the {2 * SR} frames its header declares" in line
    # garbage after a valid start: libmpg123 prints "Note: ..." lines to fd 2; one line only
    (pred / "a.mp3").write_bytes(data[:200] + bytes(range(256)) * 20)
    bad(cli, tmp_path, "--pred", pred, "--gt", tmp_path / "gt", expect="pred/a.mp3: unreadable")


# 3. unreadable files, unwritable cache, non-UTF-8 manifest -----------------------------------

@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads files whatever their mode; the in-process test below covers root")
def test_unreadable_file_by_permission(tmp_path, cli):
    write(tmp_path / "gt" / "a.wav")
    p = write(tmp_path / "pred" / "a.wav")
    p.chmod(0)
    try:
        bad(cli, tmp_path, "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", expect="pred/a.wav: cannot read file")
    finally:
        p.chmod(0o644)


@pytest.mark.parametrize("module", ["d2m_bench.io.cache", "d2m_bench.io.audio"])
def test_open_failure_is_one_line(tmp_path, monkeypatch, capsys, module):
    """open() refused (as for a file without read permission) in content hashing (cache on) and
    in the audio reader (cache off): one line naming the file, exit 2, no traceback."""
    import builtins
    import importlib

    from d2m_bench.cli import main

    write(tmp_path / "gt" / "a.wav")
    victim = write(tmp_path / "pred" / "a.wav")
    real_open = builtins.open

    def refusing_open(file, *a, **kw):
        if str(file) == str(victim):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **kw)

    monkeypatch.setattr(importlib.import_module(module), "open", refusing_open, raising=False)
    args = ["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "-q", "-j", "1"]
    with pytest.raises(SystemExit) as e:
        main(args + (["--no-cache"] if module == "d2m_bench.io.audio" else []))
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("d2m-bench: warning:")]
    assert e.value.code == 2 and len(err) == 1
    assert "pred/a.wav: cannot read file (Permission denied)" in err[0]


def test_unwritable_cache_warns_once_and_runs(tmp_path, cli):
    for i in range(4):
        write(tmp_path / "gt" / f"{i}.wav")
        # distinct predictions: four copies of one signal would rightly add the sanity warning
        write(tmp_path / "pred" / f"{i}.wav", click_track([0.3 + 0.05 * i]))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be\n")  # fails for root too
    env = dict(os.environ, D2M_BENCH_CACHE=str(blocker))
    out = tmp_path / "r.json"
    from d2m_bench_tests.conftest import run_cli

    proc = run_cli("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--out", out, "-q", "-j", "2", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cache directory not writable, running without the cache" in lines[0], proc.stderr
    doc = json.loads(out.read_text())
    assert [r["beats_coverage"] for r in doc["per_clip"]] == [0.5] * 4
    assert not any(r["cached"] for r in doc["per_clip"])
    assert any("cache directory not writable" in w for w in doc["warnings"])


def test_manifest_errors(tmp_path, cli):
    write(tmp_path / "a" / "x.wav")
    write(tmp_path / "b" / "x.wav")
    m = tmp_path / "m.csv"
    m.write_bytes("id,gt,pred\nclip\xe9,a/x.wav,b/x.wav\n".encode("latin-1"))
    bad(cli, tmp_path, "--manifest", m, expect="m.csv: manifest is not UTF-8 text (byte 0xe9 at offset 15)")
    m.write_text("id,reference,pred\nc,a/x.wav,b/x.wav\n")
    bad(cli, tmp_path, "--manifest", m, expect="m.csv: manifest needs columns id,gt,pred (has: id,reference,pred)")
    m.write_text("id,gt,pred\nc,a/x.wav,b/gone.wav\n")
    bad(cli, tmp_path, "--manifest", m, expect="b/gone.wav: id 'c': file listed in the manifest does not exist")
    m.write_text("id,gt,pred\nc,a/x.wav,b/x.wav\nc,a/x.wav,b/x.wav\n")
    bad(cli, tmp_path, "--manifest", m, expect="m.csv: line 3: duplicate id 'c'")
    # a byte-order mark (spreadsheet export) is not part of the first column's name
    m.write_bytes(b"\xef\xbb\xbfid,gt,pred\nc,a/x.wav,b/x.wav\n")
    ok(cli, "--manifest", m)


# 4. protocols validated before any audio work ------------------------------------------------

def _protocol(tmp_path, old, new, name="p.toml"):
    text = open(load_protocol("d2m-aistpp-2s").source).read()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


def test_protocols_list_their_command(cli):
    proc = cli("protocols")
    kinds = {line.split()[0]: line.split()[2] for line in proc.stdout.splitlines()}
    assert kinds["mos-p808"] == "mos"
    assert kinds["d2m-aistpp-2s"] == kinds["loris"] == kinds["tolerance"] == "eval"


def test_shipped_eval_protocols_validate_and_echo_fixed_analysis():
    for p in available_protocols().values():
        if p.command == "eval":
            p.validate_eval()
            assert p.to_dict()["fixed"]["onset_strength"]["n_fft"] == N_FFT == 2048
    assert "fixed" not in load_protocol("mos-p808").to_dict()


@pytest.mark.parametrize("old,new,expect", [
    ("sample_rate = 22050", 'sample_rate = "22050"', "audio.sample_rate = '22050' must be an integer >= 1000"),
    ("sample_rate = 22050", "sample_rate = 0", "audio.sample_rate = 0 must be an integer >= 1000 and <= 384000"),
    ('variant = "d2m"', 'variant = "d2n"', "beats.variant = 'd2n' is not one of d2m, loris, tolerance"),
    ('length_policy = "pred_to_gt"', 'length_policy = "trim"', "audio.length_policy = 'trim' is not one of"),
    ('mono = "mean"', 'mono = "left"', "audio.mono = 'left' is not one of mean, first"),
    ("delta = 0.2", "deltaa = 0.2", "unknown key(s) in [beats.onset]: deltaa"),
    ("post_max = 1", "post_max = 0", "beats.onset.post_max = 0 must be an integer > 0"),
    ("[beats]\n", "[beets]\n", "unknown table(s) beets"),
])
def test_bad_protocol_is_refused_before_audio(tmp_path, cli, old, new, expect):
    # the pred file is garbage: an error about it would mean audio was read first
    write(tmp_path / "gt" / "a.wav")
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "a.wav").write_bytes(b"RIFF\x00\x00garbage")
    proto = _protocol(tmp_path, old, new)
    line = bad(cli, tmp_path, "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--protocol", proto, expect=expect)
    assert line.startswith(f"d2m-bench: error: {proto}: protocol 'd2m-aistpp-2s'")


def test_non_eval_protocol_and_unknown_detector(tmp_path, cli):
    write(tmp_path / "gt" / "a.wav")
    write(tmp_path / "pred" / "a.wav")
    args = ("--pred", tmp_path / "pred", "--gt", tmp_path / "gt")
    line = bad(cli, tmp_path, *args, "--protocol", "mos-p808", expect="protocol 'mos-p808' is a mos protocol")
    assert "mos-p808.toml" in line
    text = open(load_protocol("tolerance").source).read().replace('events = "onset"', 'events = "beats"')
    (tmp_path / "t.toml").write_text(text)
    bad(cli, tmp_path, *args, "--protocol", tmp_path / "t.toml", expect="beats.events = 'beats' is not one of onset, beat")


def test_mono_first_is_honoured(tmp_path):
    # stereo pred: channel 0 clicks in second 0, channel 1 in second 1; gt clicks in both
    write(tmp_path / "gt" / "s.wav")
    write(tmp_path / "pred" / "s.wav", np.stack([click_track([0.3]), click_track([1.3])], axis=1))
    mean = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1)
    first = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1, overrides={"audio.mono": "first"})
    assert mean.per_clip[0]["beats_coverage"] == 1.0 and first.per_clip[0]["beats_coverage"] == 0.5
    assert first.protocol.hash != mean.protocol.hash


# 5. native rate, channels and length per clip -----------------------------------------------

def test_native_rate_and_channels_recorded(tmp_path):
    write(tmp_path / "gt" / "x.wav")
    stereo = np.stack([click_track(BOTH, sr=44100), click_track(BOTH, sr=44100)], axis=1)
    write(tmp_path / "pred" / "x.wav", stereo, sr=44100)
    cold = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1).per_clip[0]
    warm = evaluate(tmp_path / "pred", tmp_path / "gt", workers=1).per_clip[0]
    assert cold["cached"] is False and warm["cached"] is True
    for row in (cold, warm):
        assert (row["pred_native_sr"], row["pred_channels"], row["pred_native_samples"]) == (44100, 2, 88200)
        assert row["pred_resampled"] is True and row["pred_mixed"] is True
        assert (row["gt_native_sr"], row["gt_channels"], row["gt_native_samples"]) == (SR, 1, 2 * SR)
        assert row["gt_resampled"] is False and row["gt_mixed"] is False
        assert row["pred_samples"] == 2 * SR and row["length_action"] == "none"


# 6. cache key ------------------------------------------------------------------------------

def test_cache_key_covers_schema_and_library_versions(tmp_path, monkeypatch):
    write(tmp_path / "gt" / "a.wav")
    write(tmp_path / "pred" / "a.wav", click_track([0.3]))

    def cached():
        return evaluate(tmp_path / "pred", tmp_path / "gt", workers=1).per_clip[0]["cached"]

    assert cached() is False and cached() is True
    versions = events.code_versions()
    assert versions["librosa"] and versions["numpy"] and versions["d2m-bench"]
    monkeypatch.setattr(events, "CACHE_SCHEMA", events.CACHE_SCHEMA + 1)
    assert cached() is False and cached() is True
    for lib in ("librosa", "numpy", "d2m-bench"):
        monkeypatch.setattr(events, "code_versions", lambda lib=lib: dict(versions, **{lib: "0.0.0-other"}))
        assert cached() is False, lib
    monkeypatch.setattr(events, "code_versions", lambda: versions)
    assert cached() is True


# 7. bad input from a worker process, and the remaining CLI cases ----------------------------

def test_bad_file_in_a_worker_process(tmp_path, cli):
    for i in range(6):
        write(tmp_path / "gt" / f"c{i}.wav")
        write(tmp_path / "pred" / f"c{i}.wav")
    full = (tmp_path / "pred" / "c4.wav").read_bytes()
    (tmp_path / "pred" / "c4.wav").write_bytes(full[: 44 + 2 * 10000])
    bad(cli, tmp_path, "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--workers", "2",
        expect="pred/c4.wav: truncated file")


def test_bad_gt_file_and_duplicate_ids(tmp_path, cli):
    y = click_track(BOTH)
    y[10] = np.nan
    write(tmp_path / "gt" / "a.wav", y, subtype="FLOAT")
    write(tmp_path / "pred" / "a.wav")
    bad(cli, tmp_path, "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", expect="gt/a.wav: contains NaN or inf")
    write(tmp_path / "gt" / "a.wav")
    write(tmp_path / "gt" / "a.flac", subtype="PCM_16")
    bad(cli, tmp_path, "--pred", tmp_path / "pred", "--gt", tmp_path / "gt",
        expect="duplicate ids in gt (same stem, several files): a: a.flac, a.wav")
