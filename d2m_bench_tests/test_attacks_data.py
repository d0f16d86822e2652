"""Issue 13 failure 9: `data build` wrote datasets that are invalid, or died with a traceback.

Each case: the build skips and lists the bad item (exit 0, or exit 2 with --strict), writes
nothing that `data info` refuses, and `data info` itself now checks finiteness.
"""
import csv
import io
import json
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d2m_bench.data.synth import synth_aistpp, synth_tiktok
from d2m_bench.data.dataset import COLUMNS, Dataset, read_manifest
from d2m_bench.errors import UserError
from d2m_bench_tests.conftest import run_cli
from d2m_bench_tests.helpers import copy_raw


@pytest.fixture(scope="module")
def raw_aist(tmp_path_factory):
    return synth_aistpp(tmp_path_factory.mktemp("raw") / "aist", n_train=1, n_test=2)


@pytest.fixture(scope="module")
def raw_tiktok(tmp_path_factory):
    return synth_tiktok(tmp_path_factory.mktemp("raw") / "tiktok")


def _aist(raw, out, *extra):
    return run_cli("data", "build", "aistpp", "--annotations", raw / "annotations", "--music", raw / "music",
                   "--split", "test", "--visual", "none", "--out-dir", out, "-q", *extra)


def _tiktok(raw, out, *extra, annotations=None):
    return run_cli("data", "build", "tiktok", "--videos", raw / "videos",
                   "--annotations", annotations or raw / "annotations.csv", "--openpose", raw / "openpose",
                   "--visual", "none", "--out-dir", out, "-q", *extra)


def _no_traceback(r):
    assert "Traceback" not in r.stderr, r.stderr


def _one_line(r):
    """Exit 2 and one error line (progress-bar lines before it are not part of the error)."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith(("aistpp:", "tiktok:"))]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr


def _skips(out):
    return {s["item"]: s["reason"] for s in json.loads((out / "dataset.json").read_text())["builder"]["skipped"]}


def _valid(out):
    r = run_cli("data", "info", out)
    assert r.returncode == 0 and "valid:" in r.stdout, r.stderr


def _test_seqs(raw):
    return (raw / "annotations" / "splits" / "crossmodal_test.txt").read_text().split()


def _edit_pickle(path, **changes):
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    data.update(changes)
    with open(path, "wb") as fh:
        pickle.dump(data, fh)
    return data


def test_duplicate_tiktok_csv_row_is_built_once_and_listed(raw_tiktok, tmp_path):
    lines = (raw_tiktok / "annotations.csv").read_text().splitlines()
    ann = tmp_path / "ann.csv"
    ann.write_text("\n".join([*lines, lines[1]]) + "\n")  # the first video again, as line 5
    out = tmp_path / "ds"
    r = _tiktok(raw_tiktok, out, annotations=ann)
    assert r.returncode == 0, r.stderr
    ids = [s.segment_id for s in Dataset(out).segments()]
    assert len(ids) == len(set(ids)) == 8  # 3 + 2 + 3 segments, none twice
    vid = lines[1].split(",")[0]
    assert "line 5 repeats the video of line 2" in _skips(out)[vid]
    _valid(out)
    _one_line(_tiktok(raw_tiktok, tmp_path / "strict", "--strict", annotations=ann))


def test_bom_tiktok_csv_reads_like_plain(raw_tiktok, tmp_path):
    ann = tmp_path / "bom.csv"
    ann.write_bytes(b"\xef\xbb\xbf" + (raw_tiktok / "annotations.csv").read_bytes())
    r = _tiktok(raw_tiktok, tmp_path / "ds", annotations=ann)
    assert r.returncode == 0, r.stderr
    assert len(Dataset(tmp_path / "ds").segments()) == 8


def test_openpose_json_that_is_a_list_is_a_listed_skip(raw_tiktok, tmp_path):
    raw = copy_raw(raw_tiktok, tmp_path)
    vid = (raw / "annotations.csv").read_text().splitlines()[1].split(",")[0]
    bad = raw / "openpose" / f"{vid}_{3:012d}_keypoints.json"
    bad.write_text("[1, 2, 3]")
    (raw / "openpose" / f"{vid}_{4:012d}_keypoints.json").write_text('{"people": "nobody"}')
    r = _tiktok(raw, tmp_path / "ds")
    _no_traceback(r)
    assert r.returncode == 0
    assert f"{bad}: OpenPose JSON holds a list" in _skips(tmp_path / "ds")[vid]
    _valid(tmp_path / "ds")
    _one_line(_tiktok(raw, tmp_path / "strict", "--strict"))


def test_nan_openpose_keypoints_skip_only_their_segment(raw_tiktok, tmp_path):
    raw = copy_raw(raw_tiktok, tmp_path)
    vid = (raw / "annotations.csv").read_text().splitlines()[1].split(",")[0]
    path = raw / "openpose" / f"{vid}_{70:012d}_keypoints.json"  # frame 70: second 2-s segment
    doc = json.loads(path.read_text())
    doc["people"][0]["pose_keypoints_2d"][0] = float("nan")
    path.write_text(json.dumps(doc))  # Python writes NaN, and reads it back
    out = tmp_path / "ds"
    assert _tiktok(raw, out).returncode == 0
    assert "non-finite" in _skips(out)[f"{vid}_seg2"]
    ids = {s.segment_id for s in Dataset(out).segments()}
    assert f"{vid}_seg1" in ids and f"{vid}_seg3" in ids and f"{vid}_seg2" not in ids
    _valid(out)


def test_five_joint_keypoints3d_is_skipped(raw_aist, tmp_path):
    raw = copy_raw(raw_aist, tmp_path)
    seq = _test_seqs(raw)[0]
    k3 = raw / "annotations" / "keypoints3d" / f"{seq}.pkl"
    with open(k3, "rb") as fh:
        data = pickle.load(fh)
    with open(k3, "wb") as fh:
        pickle.dump({k: np.asarray(v)[:, :5] for k, v in data.items()}, fh)
    out = tmp_path / "ds"
    r = _aist(raw, out)
    assert r.returncode == 0, r.stderr
    assert "has shape" in _skips(out)[seq] and "(N, 17, 3)" in _skips(out)[seq]
    assert {s.sequence for s in Dataset(out).segments()} == {_test_seqs(raw)[1]}
    _valid(out)
    _one_line(_aist(raw, tmp_path / "strict", "--strict"))


@pytest.mark.parametrize("key,frame", [("smpl_poses", 130), ("smpl_trans", 10)])
def test_non_finite_motion_skips_its_segment(raw_aist, tmp_path, key, frame):
    raw = copy_raw(raw_aist, tmp_path)
    seq = _test_seqs(raw)[0]
    path = raw / "annotations" / "motions" / f"{seq}.pkl"
    with open(path, "rb") as fh:
        arr = np.array(pickle.load(fh)[key], dtype=np.float64)
    arr[frame] = np.inf if key == "smpl_trans" else np.nan
    _edit_pickle(path, **{key: arr})
    out = tmp_path / "ds"
    assert _aist(raw, out).returncode == 0
    video = seq.replace("_cAll_", "_c01_")
    bad = f"{video}_seg{frame // 120 + 1}"
    assert "non-finite values" in _skips(out)[bad] and "motion" in _skips(out)[bad]
    ids = {s.segment_id for s in Dataset(out).segments()}
    assert bad not in ids and len(ids) >= 2
    _valid(out)


@pytest.mark.parametrize("value,needle", [("not an array", "holds a str"),
                                          ({"a": 1}, "holds a dict"),
                                          ([["x"] * 72] * 300, "holds a <U1 array"),
                                          (np.zeros((300, 71)), "has shape (300, 71)"),
                                          (np.float64(3.0), "has shape ()")])
def test_smpl_poses_of_the_wrong_type_is_one_line(raw_aist, tmp_path, value, needle):
    raw = copy_raw(raw_aist, tmp_path)
    seq = _test_seqs(raw)[0]
    _edit_pickle(raw / "annotations" / "motions" / f"{seq}.pkl", smpl_poses=value)
    out = tmp_path / "ds"
    r = _aist(raw, out)
    _no_traceback(r)
    assert r.returncode == 0
    assert needle in _skips(out)[seq]
    r = _aist(raw, tmp_path / "strict", "--strict")
    _one_line(r)
    assert needle in r.stderr


def test_info_refuses_non_finite_files(raw_aist, tmp_path):
    out = tmp_path / "ds"
    assert _aist(raw_aist, out).returncode == 0
    _valid(out)
    seg = Dataset(out).segments()[0]
    motion = np.load(out / seg.motion)
    motion[3, 7] = np.nan
    np.save(out / seg.motion, motion)
    r = run_cli("data", "info", out)
    _one_line(r)
    assert str(out / seg.motion) in r.stderr and "non-finite" in r.stderr


def test_resume_rewrites_a_non_finite_file(raw_aist, tmp_path):
    out = tmp_path / "ds"
    assert _aist(raw_aist, out).returncode == 0
    seg = Dataset(out).segments()[0]
    kp = np.load(out / seg.keypoints)
    kp[0, 0, 0] = np.inf
    np.save(out / seg.keypoints, kp)
    (out / "manifest.csv").unlink()  # an interrupted build: the rerun resumes
    assert _aist(raw_aist, out).returncode == 0
    assert np.isfinite(np.load(out / seg.keypoints)).all()
    _valid(out)


@pytest.mark.parametrize("body,needle", [
    (b"\xff\xfe\x00garbage\x80\x81", "not UTF-8"),
    ("segment_id,split,sequence,genre,music_id,start_s,end_s,audio,motion,keypoints,joints3d,visual\n"
     "a,test,s,,,0,2\n".encode(), "fewer fields"),
    ("segment_id,split,sequence,genre,music_id,start_s,end_s,audio,motion,keypoints,joints3d,visual\n"
     "a,test,s,,,nan,2,,,,,\n".encode(), "not finite"),
])
def test_info_on_a_damaged_manifest_is_one_line(tmp_path, body, needle):
    from d2m_bench.data.dataset import DatasetInfo
    from dataclasses import asdict

    (tmp_path / "dataset.json").write_text(json.dumps(asdict(DatasetInfo(name="x"))))
    (tmp_path / "manifest.csv").write_bytes(body)
    r = run_cli("data", "info", tmp_path)
    _one_line(r)
    assert needle in r.stderr and "manifest.csv" in r.stderr


manifest_cells = st.one_of(st.sampled_from(["", "a", "seg1", "test", "train", "0", "2", "nan", "-inf", "1e400", "x,y"]),
                           st.text(max_size=5))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.one_of(st.just(list(COLUMNS)), st.lists(st.sampled_from([*COLUMNS, "junk"]), max_size=13)),
       rows=st.lists(st.lists(manifest_cells, max_size=14), max_size=6), tail=st.binary(max_size=6))
def test_fuzz_dataset_manifest_reader(tmp_path, header, rows, tail):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    path = tmp_path / "manifest.csv"
    path.write_bytes(buf.getvalue().encode() + tail)
    try:
        segs = read_manifest(path)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
        return
    ids = [s.segment_id for s in segs]
    assert len(ids) == len(set(ids))
    assert all(np.isfinite([s.start_s, s.end_s]).all() for s in segs)


# --- issue 24 row 5: paths built from data stay inside their folder ---------------------------------
@pytest.mark.parametrize("column", ["split", "video_id"])
def test_tiktok_csv_names_that_climb_out_are_refused(raw_tiktok, tmp_path, column):
    """A split column ``../../../../DIR`` made `data build tiktok` write DIR/<id>_seg1.wav."""
    rows = list(csv.DictReader(io.StringIO((raw_tiktok / "annotations.csv").read_text())))
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    rows[0][column] = "../../../../../../../../../.." + str(victim_dir)
    if column == "split" or "split" in rows[0]:
        for r in rows:
            r.setdefault("split", "test")
    ann = tmp_path / "ann.csv"
    with open(ann, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    r = _tiktok(raw_tiktok, tmp_path / "ds", annotations=ann)
    _one_line(r)
    assert str(ann) in r.stderr and "not a usable name" in r.stderr
    assert not any(victim_dir.rglob("*")) and not (tmp_path / "ds" / "manifest.csv").exists()


@pytest.fixture(scope="module")
def built_aist(raw_aist, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "ds"
    assert _aist(raw_aist, out).returncode == 0
    return out


@pytest.mark.parametrize("column,value", [("segment_id", "../../../../DIR/victim"), ("split", ".."),
                                          ("segment_id", ".hidden"), ("audio", "../../etc/passwd"),
                                          ("audio", "/etc/passwd")])
def test_manifest_ids_and_paths_that_climb_out_are_refused(built_aist, tmp_path, column, value):
    """A manifest segment_id ``../../../../DIR/victim`` passed `data info` and made `generate`
    write DIR/victim.wav; every reader of a dataset (info, generate, train, baselines) refuses it."""
    import shutil

    out = tmp_path / "ds"
    shutil.copytree(built_aist, out)
    text = (out / "manifest.csv").read_text().splitlines()
    rows = list(csv.DictReader(io.StringIO("\n".join(text))))
    rows[0][column] = value
    with open(out / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    r = run_cli("data", "info", out)
    _one_line(r)
    assert "manifest.csv" in r.stderr and "line 2" in r.stderr and column in r.stderr
    with pytest.raises(UserError, match=column):
        Dataset(out).segments()
