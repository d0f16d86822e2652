"""`d2m-bench baseline`: list, run, and one-line errors with exit code 2 for missing inputs."""
import json

import numpy as np
import pytest

from d2m_bench.dataset import Dataset, write_manifest
from d2m_bench.synthetic import make_tiny_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("cli") / "d", n_train=1, n_test=3)


def one_line_error(res, *needles):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("d2m-bench: error:"), res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_list_names_every_baseline(cli):
    res = cli("baseline", "list")
    assert res.returncode == 0
    for name in ("dance2music", "cmt", "foley-music", "ground-truth", "shuffled-gt", "silence",
                 "white-noise", "metronome"):
        assert name in res.stdout
    assert "<segment_id>.mid + <segment_id>.json" in res.stdout


def test_run_writes_clips_and_provenance(cli, data, tmp_path):
    res = cli("baseline", "run", "white-noise", "--data", data, "--out", tmp_path / "o", "--seed", "4", "-q")
    assert res.returncode == 0, res.stderr
    ids = {s.segment_id for s in Dataset(data).segments("test")}
    assert {p.stem for p in (tmp_path / "o").glob("*.wav")} == ids
    prov = json.loads((tmp_path / "o" / "provenance.json").read_text())
    assert prov["seed"] == 4 and prov["dataset"]["split"] == "test"
    again = cli("baseline", "run", "white-noise", "--data", data, "--out", tmp_path / "o", "-q")
    one_line_error(again, "--force")
    assert cli("baseline", "run", "silence", "--data", data, "--out", tmp_path / "o", "-q", "--force").returncode == 0
    assert json.loads((tmp_path / "o" / "provenance.json").read_text())["baseline"] == "silence"


def test_adapters_list_missing_upstream_files(cli, data, tmp_path):
    ids = sorted(s.segment_id for s in Dataset(data).segments("test"))
    line = one_line_error(cli("baseline", "run", "cmt", "--data", data, "--out", tmp_path / "o"), "--upstream",
                          "<segment_id>.mid, <segment_id>.json for each of the 3 segments")
    up = tmp_path / "up"
    up.mkdir()
    (up / f"{ids[0]}.mid").write_bytes(b"")
    (up / f"{ids[0]}.json").write_text("{}")
    line = one_line_error(cli("baseline", "run", "cmt", "--data", data, "--out", tmp_path / "o", "--upstream", up),
                          "4 expected upstream files are missing", f"{ids[1]}.mid", f"{ids[2]}.json")
    assert f"{ids[0]}.mid" not in line
    one_line_error(cli("baseline", "run", "foley-music", "--data", data, "--out", tmp_path / "o", "--upstream", up),
                   "2 expected upstream files are missing", f"{ids[1]}.mid")
    one_line_error(cli("baseline", "run", "foley-music", "--data", data, "--out", tmp_path / "o",
                       "--upstream", tmp_path / "nope"), "upstream directory does not exist")
    assert not (tmp_path / "o").exists()  # nothing is written before the inputs are complete


def test_cmt_rejects_metadata_without_tempo(cli, data, tmp_path):
    from d2m_bench.render import fluidsynth_path, write_notes_midi

    if fluidsynth_path() is None:
        pytest.skip("fluidsynth not installed: apt-get install fluidsynth fluid-soundfont-gm (make sysdeps)")
    up = tmp_path / "up"
    for s in Dataset(data).segments("test"):
        write_notes_midi(up / f"{s.segment_id}.mid", [(60, 0.5, 1.0, 100)])
        (up / f"{s.segment_id}.json").write_text(json.dumps({"duration": 2.0}))
    one_line_error(cli("baseline", "run", "cmt", "--data", data, "--out", tmp_path / "o", "--upstream", up, "-q"),
                   "positive number 'tempo'")


def test_missing_dataset_columns_and_unknown_names(cli, data, tmp_path):
    one_line_error(cli("baseline", "run", "nope", "--data", data, "--out", tmp_path / "o"), "unknown baseline")
    one_line_error(cli("baseline", "run", "silence", "--data", tmp_path, "--out", tmp_path / "o"), "not a built dataset")
    one_line_error(cli("baseline", "run", "silence", "--data", data, "--split", "val", "--out", tmp_path / "o"),
                   "no segments in split 'val'")
    ds = Dataset(data)
    segs = ds.segments()
    stripped = tmp_path / "nokp"
    for s in segs:
        s.keypoints = ""
        s.joints3d = ""
    write_manifest(stripped, segs, ds.info)
    one_line_error(cli("baseline", "run", "metronome", "--data", stripped, "--out", tmp_path / "o"),
                   "metronome needs joints3d", "3 lack it")
    segs[0].keypoints = "keypoints/none.npy"
    write_manifest(stripped, segs, ds.info)
    one_line_error(cli("baseline", "run", "dance2music", "--data", stripped, "--out", tmp_path / "o"),
                   "needs keypoints")


def test_video_rhythm_command(cli, tmp_path):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (120, 160)), (0, 0), 2)
    tex = ((tex - tex.min()) / np.ptp(tex) * 255).astype(np.uint8)
    path = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120), False)
    for i in range(45):
        w.write(np.roll(tex, 2 * i, axis=1))
    w.release()
    res = cli("baseline", "video-rhythm", path, "--out", tmp_path / "meta")
    assert res.returncode == 0, res.stderr
    meta = json.loads((tmp_path / "meta" / "v.json").read_text())
    assert meta["duration"] == pytest.approx(1.5) and len(meta["flow_magnitude"]) == 44
    assert np.median(meta["flow_magnitude"]) == pytest.approx(1.0, abs=0.1)  # 2 px along x: mean(|2|, |0|)
    one_line_error(cli("baseline", "video-rhythm", tmp_path / "none.mp4", "--out", tmp_path / "meta"), "no such video")
