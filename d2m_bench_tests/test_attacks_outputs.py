"""Issue 13, failure 5 (an output path equal to an input destroyed it) and the unwritable --out
of failure 7 (found only after the whole evaluation)."""
import json
import os
from pathlib import Path

import pytest

from d2m_bench_tests.helpers import cache_entries, write_click_pairs

SR = 22050


@pytest.fixture
def clips(tmp_path):
    write_click_pairs(tmp_path, [f"clip00{i}" for i in range(2)], sr=SR)
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,gt,pred\n" + "".join(f"c{i},gt/clip00{i}.wav,pred/clip00{i}.wav\n" for i in range(2)))
    return tmp_path


def _snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(proc, *needles):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def _no_work_done():
    """Nothing was computed: the per-file cache is still empty."""
    cache = Path(os.environ["D2M_BENCH_CACHE"])
    return not cache_entries(cache)


@pytest.mark.parametrize("option", ["--out", "--csv"])
def test_eval_output_that_is_a_gt_clip(clips, cli, option):
    before = _snapshot(clips)
    proc = cli("eval", "--pred", clips / "pred", "--gt", clips / "gt", option, clips / "gt" / "clip000.wav", "-q")
    _refused(proc, "gt/clip000.wav", "input --gt")
    assert _snapshot(clips) == before and _no_work_done()


def test_eval_csv_that_is_the_manifest(clips, cli):
    before = _snapshot(clips)
    proc = cli("eval", "--manifest", clips / "m.csv", "--csv", clips / "m.csv", "-q")
    _refused(proc, "input --manifest")
    assert _snapshot(clips) == before


def test_eval_output_that_is_a_file_the_manifest_lists(clips, cli):
    before = _snapshot(clips)
    proc = cli("eval", "--manifest", clips / "m.csv", "--out", clips / "pred" / "clip001.wav", "-q")
    _refused(proc, "manifest lists")
    assert _snapshot(clips) == before


def test_eval_output_through_a_link_to_an_input(clips, cli, tmp_path):
    (tmp_path / "soft.json").symlink_to(clips / "gt" / "clip001.wav")
    os.link(clips / "pred" / "clip000.wav", tmp_path / "hard.json")
    before = _snapshot(clips / "gt") | _snapshot(clips / "pred")
    for link in ("soft.json", "hard.json"):
        proc = cli("eval", "--pred", clips / "pred", "--gt", clips / "gt", "--out", tmp_path / link, "-q")
        _refused(proc, "refusing to overwrite")
    assert _snapshot(clips / "gt") | _snapshot(clips / "pred") == before


def test_eval_out_equal_to_csv(clips, cli):
    proc = cli("eval", "--pred", clips / "pred", "--gt", clips / "gt", "--out", clips / "r.json",
               "--csv", clips / "." / "r.json", "-q")
    _refused(proc, "--csv and --out are the same file")
    assert not (clips / "r.json").exists() and _no_work_done()


@pytest.mark.parametrize("where", ["proc", "file-as-folder"])
def test_eval_unwritable_out_is_found_before_any_work(clips, cli, where):
    if where == "proc":  # no one, root included, can create files there
        if not Path("/proc/self").is_dir():
            pytest.skip("needs a Linux /proc")
        out = Path("/proc/d2m-bench-result.json")
    else:
        (clips / "a-file").write_text("not a folder")
        out = clips / "a-file" / "sub" / "r.json"
    proc = cli("eval", "--pred", clips / "pred", "--gt", clips / "gt", "--out", out, "-q")
    _refused(proc, "cannot write --out")
    assert _no_work_done()


def test_eval_still_writes_ordinary_outputs(clips, cli):
    """The checks refuse only what they should: outputs beside the inputs, and a rerun over
    the previous result, still work."""
    for _ in range(2):
        proc = cli("eval", "--pred", clips / "pred", "--gt", clips / "gt", "--out", clips / "pred" / "r.json",
                   "--csv", clips / "r.csv", "-q")
        assert proc.returncode == 0, proc.stderr
    assert json.loads((clips / "pred" / "r.json").read_text())["complete"] is True


def _run_file(path, value=0.5):
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {"system": "S", "protocol": "p", "protocol_hash": "h", "metric": "beats_hit", "value": value,
           "unit": "fraction", "higher_is_better": True, "n": 2}
    path.write_text(json.dumps({"complete": True, "created": "2026", "inputs": {}, "leaderboard": [row]}))


@pytest.mark.parametrize("option", ["--csv", "--md"])
def test_leaderboard_output_that_is_a_run_file(tmp_path, cli, option):
    run = tmp_path / "results" / "runs" / "x.json"
    _run_file(run)
    before = run.read_bytes()
    proc = cli("leaderboard", "--results", tmp_path / "results", "--no-shipped", option, run)
    _refused(proc, "run file")
    assert run.read_bytes() == before


@pytest.mark.parametrize("other, name", [("--md", "t"), ("--html", "t.csv")])
def test_leaderboard_csv_equal_to_other_output(tmp_path, cli, other, name):
    _run_file(tmp_path / "results" / "runs" / "x.json")
    proc = cli("leaderboard", "--results", tmp_path / "results", "--no-shipped", "--csv", tmp_path / name,
               other, tmp_path / name)
    _refused(proc, "same file")
    assert not (tmp_path / name).exists()


def test_mos_aggregate_output_that_is_the_ratings_csv(tmp_path, cli):
    ratings = tmp_path / "mos_systems.csv"  # the name --out tmp_path/mos.json gives its systems table
    ratings.write_text("rater,item,system,aspect,score\nr1,i1,A,quality,4\n")
    before = ratings.read_bytes()
    proc = cli("mos", "aggregate", ratings, "--out", tmp_path / "mos.json")
    _refused(proc, "is the input RATINGS")
    assert ratings.read_bytes() == before


def test_survey_export_over_the_ratings_database(tmp_path, cli):
    survey = tmp_path / "survey"
    survey.mkdir()
    db = survey / "ratings.sqlite"
    db.write_bytes(b"SQLite format 3\x00 collected ratings")
    proc = cli("survey", "export", survey, "--out", db)
    _refused(proc, "input SURVEY")
    assert db.read_bytes() == b"SQLite format 3\x00 collected ratings"


# --- issue 24 row 6: every file eval reads feeds the output check ----------------------------------
@pytest.mark.parametrize("case", ["prompts", "weights", "provenance", "hub-vggish", "env-vggish"])
def test_eval_output_onto_an_input_it_finds_itself(clips, case):
    """--prompts p.csv --csv p.csv, --weights panns-cnn14=w.pth --out w.pth, --out PRED/provenance.json
    and --out onto the VGGish file of the torch hub cache (or $D2M_BENCH_VGGISH_WEIGHTS) deleted
    and replaced the input."""
    from d2m_bench_tests.conftest import run_cli

    env = {**os.environ, "TORCH_HOME": str(clips / "torchhome")}
    env.pop("D2M_BENCH_VGGISH_WEIGHTS", None)
    hub = clips / "torchhome" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "vggish-10086976.pth").write_bytes(b"weights")
    (clips / "w.pth").write_bytes(b"panns")
    (clips / "p.csv").write_text("id,text\nclip000,a\n")
    (clips / "pred" / "provenance.json").write_text("{}")
    args = ["eval", "--pred", clips / "pred", "--gt", clips / "gt", "-q"]
    if case == "prompts":
        args += ["--prompts", clips / "p.csv", "--csv", clips / "p.csv"]
        needle = "--prompts"
    elif case == "weights":
        args += ["--weights", f"panns-cnn14={clips / 'w.pth'}", "--out", clips / "w.pth"]
        needle = "panns-cnn14 weights"
    elif case == "provenance":
        args += ["--out", clips / "pred" / "provenance.json"]
        needle = "provenance.json"
    elif case == "hub-vggish":
        args += ["--out", hub / "vggish-10086976.pth"]
        needle = "torch hub cache"
    else:
        env["D2M_BENCH_VGGISH_WEIGHTS"] = str(clips / "w.pth")
        args += ["--out", clips / "w.pth"]
        needle = "D2M_BENCH_VGGISH_WEIGHTS"
    before = _snapshot(clips)
    proc = run_cli(*args, env=env)
    _refused(proc, needle, "refusing to overwrite")
    assert _snapshot(clips) == before
