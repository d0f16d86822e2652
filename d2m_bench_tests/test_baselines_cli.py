"""`d2m-bench baseline`: list, run, and one-line errors with exit code 2 for missing inputs."""
import json

import numpy as np
import pytest

from d2m_bench.data.dataset import Dataset, write_manifest
from d2m_bench.synth.synthetic import make_tiny_dataset


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
    res = cli("baseline", "run", "white-noise", "--data", data, "--out-dir", tmp_path / "o", "--seed", "4", "-q")
    assert res.returncode == 0, res.stderr
    ids = {s.segment_id for s in Dataset(data).segments("test")}
    assert {p.stem for p in (tmp_path / "o").glob("*.wav")} == ids
    prov = json.loads((tmp_path / "o" / "provenance.json").read_text())
    assert prov["seed"] == 4 and prov["dataset"]["split"] == "test"
    again = cli("baseline", "run", "white-noise", "--data", data, "--out-dir", tmp_path / "o", "-q")
    one_line_error(again, "--force")
    assert cli("baseline", "run", "silence", "--data", data, "--out-dir", tmp_path / "o", "-q", "--force").returncode == 0
    assert json.loads((tmp_path / "o" / "provenance.json").read_text())["baseline"] == "silence"


def test_adapters_list_missing_upstream_files(cli, data, tmp_path):
    ids = sorted(s.segment_id for s in Dataset(data).segments("test"))
    line = one_line_error(cli("baseline", "run", "cmt", "--data", data, "--out-dir", tmp_path / "o"), "--upstream",
                          "<segment_id>.mid, <segment_id>.json for each of the 3 segments")
    up = tmp_path / "up"
    up.mkdir()
    (up / f"{ids[0]}.mid").write_bytes(b"")
    (up / f"{ids[0]}.json").write_text("{}")
    line = one_line_error(cli("baseline", "run", "cmt", "--data", data, "--out-dir", tmp_path / "o", "--upstream", up),
                          "4 expected upstream files are missing", f"{ids[1]}.mid", f"{ids[2]}.json")
    assert f"{ids[0]}.mid" not in line
    one_line_error(cli("baseline", "run", "foley-music", "--data", data, "--out-dir", tmp_path / "o", "--upstream", up),
                   "2 expected upstream files are missing", f"{ids[1]}.mid")
    one_line_error(cli("baseline", "run", "foley-music", "--data", data, "--out-dir", tmp_path / "o",
                       "--upstream", tmp_path / "nope"), "upstream directory does not exist")
    assert not (tmp_path / "o").exists()  # nothing is written before the inputs are complete


def test_cmt_rejects_metadata_without_tempo(cli, data, tmp_path):
    from d2m_bench.synth.render import fluidsynth_path, write_notes_midi

    if fluidsynth_path() is None:
        pytest.skip("fluidsynth not installed: apt-get install fluidsynth fluid-soundfont-gm (make sysdeps)")
    up = tmp_path / "up"
    for s in Dataset(data).segments("test"):
        write_notes_midi(up / f"{s.segment_id}.mid", [(60, 0.5, 1.0, 100)])
        (up / f"{s.segment_id}.json").write_text(json.dumps({"duration": 2.0}))
    one_line_error(cli("baseline", "run", "cmt", "--data", data, "--out-dir", tmp_path / "o", "--upstream", up, "-q"),
                   "positive number 'tempo'")


def test_missing_dataset_columns_and_unknown_names(cli, data, tmp_path):
    one_line_error(cli("baseline", "run", "nope", "--data", data, "--out-dir", tmp_path / "o"), "unknown baseline")
    one_line_error(cli("baseline", "run", "silence", "--data", tmp_path, "--out-dir", tmp_path / "o"), "not a built dataset")
    one_line_error(cli("baseline", "run", "silence", "--data", data, "--split", "val", "--out-dir", tmp_path / "o"),
                   "no segments in split 'val'")
    ds = Dataset(data)
    segs = ds.segments()
    stripped = tmp_path / "nokp"
    for s in segs:
        s.keypoints = ""
        s.joints3d = ""
    write_manifest(stripped, segs, ds.info)
    one_line_error(cli("baseline", "run", "metronome", "--data", stripped, "--out-dir", tmp_path / "o"),
                   "metronome needs joints3d", "3 lack it")
    segs[0].keypoints = "keypoints/none.npy"
    write_manifest(stripped, segs, ds.info)
    one_line_error(cli("baseline", "run", "dance2music", "--data", stripped, "--out-dir", tmp_path / "o"),
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
    res = cli("baseline", "video-rhythm", path, "--out-dir", tmp_path / "meta")
    assert res.returncode == 0, res.stderr
    meta = json.loads((tmp_path / "meta" / "v.json").read_text())
    assert meta["duration"] == pytest.approx(1.5) and len(meta["flow_magnitude"]) == 44
    assert np.median(meta["flow_magnitude"]) == pytest.approx(1.0, abs=0.1)  # 2 px along x: mean(|2|, |0|)
    one_line_error(cli("baseline", "video-rhythm", tmp_path / "none.mp4", "--out-dir", tmp_path / "meta"), "no such video")


def protocol_at(tmp_path, sr):
    """A copy of d2m-aistpp-2s with another audio.sample_rate (and so another hash)."""
    from d2m_bench.protocol import load_protocol

    text = __import__("pathlib").Path(load_protocol("d2m-aistpp-2s").source).read_text()
    assert "sample_rate = 22050" in text
    path = tmp_path / f"at-{sr}.toml"
    path.write_text(text.replace('name = "d2m-aistpp-2s"', f'name = "at-{sr}"')
                    .replace("sample_rate = 22050", f"sample_rate = {sr}", 1))
    return path


def test_audio_is_written_at_the_protocols_rate(cli, data, tmp_path):
    import soundfile as sf

    from d2m_bench.io.audio import load_audio
    from d2m_bench.protocol import load_protocol

    proto = protocol_at(tmp_path, 16000)
    res = cli("baseline", "run", "ground-truth", "--data", data, "--out-dir", tmp_path / "gt", "--protocol", proto, "-q")
    assert res.returncode == 0, res.stderr
    prov = json.loads((tmp_path / "gt" / "provenance.json").read_text())
    assert prov["sample_rate"] == 16000 and prov["dataset"]["sample_rate"] == 22050
    assert prov["protocol"] == {"name": "at-16000", "hash": load_protocol(proto).hash, "source": str(proto)}
    assert prov["run"]["resampled"] == "22050 Hz -> 16000 Hz (soxr_hq)"
    for seg in Dataset(data).segments("test"):
        y, sr = sf.read(tmp_path / "gt" / f"{seg.segment_id}.wav", dtype="float32")
        # what eval does to the gt: librosa/soxr to 16 kHz, ceil(44100 * 16000 / 22050) samples
        ref, _ = load_audio(Dataset(data).root / seg.audio, sr=16000)
        assert sr == 16000 and len(y) == len(ref) == 32000
        assert np.abs(y - np.clip(ref, -1, 1)).max() < 1e-4  # PCM_16
    res = cli("baseline", "run", "metronome", "--data", data, "--out-dir", tmp_path / "m", "-q")
    prov = json.loads((tmp_path / "m" / "provenance.json").read_text())
    assert prov["sample_rate"] == 22050 and prov["protocol"]["name"] == "d2m-aistpp-2s"
    assert sf.info(str(next((tmp_path / "m").glob("*.wav")))).samplerate == 22050
    one_line_error(cli("baseline", "run", "silence", "--data", data, "--out-dir", tmp_path / "x", "--protocol", "nope"),
                   "unknown protocol 'nope'")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("edit,message", [
    (("sample_rate = 22050", "sample_rate = 0"), "audio.sample_rate = 0 must be an integer >= 1000"),
    (('resample = "soxr_hq"', 'resample = "linear"'), "audio.resample = 'linear' is not one of"),
])
def test_a_protocol_eval_would_refuse_is_refused_before_writing(cli, data, tmp_path, edit, message):
    proto = protocol_at(tmp_path, 22050)
    text = proto.read_text()
    assert edit[0] in text
    proto.write_text(text.replace(edit[0], edit[1], 1))
    one_line_error(cli("baseline", "run", "ground-truth", "--data", data, "--out-dir", tmp_path / "x", "--protocol", proto),
                   f"protocol 'at-22050': {message}")
    assert not (tmp_path / "x").exists()


def test_force_replaces_only_this_runs_files(cli, data, tmp_path):
    ids = sorted(s.segment_id for s in Dataset(data).segments("test"))
    out = tmp_path / "o"
    assert cli("baseline", "run", "silence", "--data", data, "--out-dir", out, "-q").returncode == 0
    (out / "notes.txt").write_text("mine")
    (out / "midi").mkdir()
    (out / "midi" / "mine.mid").write_bytes(b"x")
    (out / "midi" / f"{ids[0]}.mid").write_bytes(b"old")
    assert cli("baseline", "run", "white-noise", "--data", data, "--out-dir", out, "-q", "--force").returncode == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "midi" / "mine.mid").exists()
    assert not (out / "midi" / f"{ids[0]}.mid").exists()  # an earlier run's MIDI for this id
    assert {p.stem for p in out.glob("*.wav")} == set(ids)
    (out / "someone-else.wav").write_bytes(b"RIFF")
    one_line_error(cli("baseline", "run", "silence", "--data", data, "--out-dir", out, "-q", "--force"),
                   "1 audio files that are not segments of split 'test'", "someone-else.wav")
    assert (out / "someone-else.wav").exists() and len(list(out.glob("*.wav"))) == 4
    # The refusal follows what eval pairs: a video would be an extra id, a dot-file never is.
    (out / "someone-else.wav").unlink()
    (out / "take2.mp4").write_bytes(b"x")
    (out / ".tmp-abc.wav").write_bytes(b"x")
    one_line_error(cli("baseline", "run", "silence", "--data", data, "--out-dir", out, "-q", "--force"),
                   "1 audio files that are not segments of split 'test'", "take2.mp4")
    (out / "take2.mp4").unlink()
    assert cli("baseline", "run", "silence", "--data", data, "--out-dir", out, "-q", "--force").returncode == 0
    one_line_error(cli("baseline", "run", "silence", "--data", data, "--out-dir", Dataset(data).root / "audio" / "test",
                       "-q", "--force"), "inside the dataset")
    one_line_error(cli("baseline", "run", "silence", "--data", data, "--out-dir", data, "-q", "--force"),
                   "inside the dataset")


def test_provenance_path_is_absolute_and_the_score_hint_is_complete(cli, data, tmp_path):
    import os
    import shlex

    rel = os.path.relpath(data, tmp_path)
    res = cli("baseline", "run", "silence", "--data", rel, "--out-dir", "o", "--protocol", "d2m-aistpp-3s", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    prov = json.loads((tmp_path / "o" / "provenance.json").read_text())
    assert prov["dataset"]["path"] == str(Dataset(data).root.resolve())
    hint = [line for line in res.stdout.splitlines() if line.startswith("score with: ")][0]
    args = shlex.split(hint[len("score with: "):])
    assert args[:2] == ["d2m-bench", "eval"]
    opt = dict(zip(args[2::2], args[3::2]))
    assert opt["--pred"] == "o" and opt["--system"] == "silence" and opt["--protocol"] == "d2m-aistpp-3s"
    assert opt["--data"] == prov["dataset"]["path"] and opt["--split"] == "test"
    # the gt folder holds exactly the ids the run wrote (eval pairs them by stem)
    gt = {p.stem for p in __import__("pathlib").Path(opt["--gt"]).glob("*.wav")}
    assert gt == {p.stem for p in (tmp_path / "o").glob("*.wav")}
