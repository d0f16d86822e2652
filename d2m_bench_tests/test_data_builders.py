"""Builders end to end through the CLI on the synthetic raw layouts, and their bad-input paths."""
import json
import os
import pickle
import shutil

import numpy as np
import pytest

from d2m_bench.io.audio import load_audio
from d2m_bench.io.cache import file_digest
from d2m_bench.data.synth import synth_aistpp, synth_tiktok
from d2m_bench.data.dataset import Dataset
from d2m_bench.synth.synthetic import make_tiny_dataset
from d2m_bench_tests.conftest import run_cli
from d2m_bench_tests.helpers import copy_raw


@pytest.fixture(scope="module")
def raw_aist(tmp_path_factory):
    return synth_aistpp(tmp_path_factory.mktemp("raw") / "aist")


@pytest.fixture(scope="module")
def built_aist(raw_aist, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "ds"
    r = run_cli("data", "build", "aistpp", "--annotations", raw_aist / "annotations", "--music", raw_aist / "music",
                "--videos", raw_aist / "videos", "--out-dir", out)
    assert r.returncode == 0, r.stderr
    return out


def _build(raw, out, *extra):
    # -q: on a slow machine a build passes 10 s and would print progress lines into stderr
    return run_cli("data", "build", "aistpp", "--annotations", raw / "annotations", "--music", raw / "music",
                   "--videos", raw / "videos", "--out-dir", out, "-q", *extra)


def test_aistpp_build_contents(raw_aist, built_aist):
    ds = Dataset(built_aist)
    test = ds.segments("test")
    # synth: train sequences of 3, 2, 3 full windows, test 2 and 3 (+37 frames dropped each)
    assert len(test) == 5 and len(ds.segments("train")) == 8
    seq = "gLH_sBM_cAll_d18_mLH4_ch02"
    segs = [s for s in test if s.sequence == seq]
    assert [s.segment_id for s in segs] == [f"gLH_sBM_c01_d18_mLH4_ch02_seg{k}" for k in (1, 2, 3)]
    s2 = segs[1]
    assert (s2.start_s, s2.end_s, s2.genre, s2.music_id) == (2.0, 4.0, "gLH", "mLH4")
    with open(raw_aist / "annotations" / "motions" / f"{seq}.pkl", "rb") as fh:
        mot = pickle.load(fh)
    with open(raw_aist / "annotations" / "keypoints2d" / f"{seq}.pkl", "rb") as fh:
        kp2 = pickle.load(fh)["keypoints2d"]
    motion = np.load(built_aist / s2.motion)
    assert motion.shape == (120, 219)
    assert np.allclose(motion[:, :3], mot["smpl_trans"][120:240] / mot["smpl_scaling"][0], atol=1e-4)
    assert np.allclose(np.load(built_aist / s2.keypoints), kp2[0, 120:240:2])  # camera c01, 60 -> 30 fps
    assert np.load(built_aist / s2.joints3d).shape == (120, 17, 3)
    assert np.load(built_aist / s2.visual).shape == (64,)
    # audio = the music cut at [2 s, 4 s), resampled to 22050, peak 0.95
    y, sr = load_audio(built_aist / s2.audio, None)
    music, _ = load_audio(raw_aist / "music" / "mLH4.wav", 22050)
    ref = music[44100:88200]
    assert sr == 22050 and len(y) == 44100
    assert abs(np.abs(y).max() - 0.95) < 1e-3
    assert np.corrcoef(y, ref)[0, 1] > 0.999
    info = json.loads((built_aist / "dataset.json").read_text())
    assert info["visual_extractor"] == "flow-stats-v1" and info["visual_dim"] == 64
    assert info["builder"]["n_skipped"] == 0


def test_info_summarises_and_validates(built_aist, tmp_path):
    r = run_cli("data", "info", built_aist, "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["segments"] == {"test": 5, "train": 8} and s["files_checked"] == 13 * 5
    assert s["genres"]["test"] == {"gLH": 5}
    bad = tmp_path / "ds"
    shutil.copytree(built_aist, bad)
    victim = sorted((bad / "motion" / "test").glob("*.npy"))[0]
    np.save(victim, np.zeros((119, 219), np.float32))
    r = run_cli("data", "info", bad)
    assert r.returncode == 2 and victim.name in r.stderr and "(119, 219)" in r.stderr
    victim.unlink()
    r = run_cli("data", "info", bad)
    assert r.returncode == 2 and "missing file" in r.stderr and victim.name in r.stderr


def test_info_accepts_the_tiny_dataset(tmp_path):
    for kind in ("aistpp", "tiktok"):
        root = make_tiny_dataset(tmp_path / kind, kind=kind, n_train=2, n_test=2)
        r = run_cli("data", "info", root)
        assert r.returncode == 0, r.stderr


def test_resume_rebuilds_only_invalid_segments(raw_aist, built_aist, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(built_aist, out)
    broken = sorted((out / "audio" / "train").glob("*.wav"))[0]
    broken.write_bytes(broken.read_bytes()[:1000])  # truncated by a killed build
    keep = sorted((out / "motion" / "test").glob("*.npy"))[0]
    before = keep.stat().st_mtime_ns
    r = _build(raw_aist, out)
    assert r.returncode == 0, r.stderr
    assert "resumed 12" in r.stdout  # only the broken segment is rebuilt
    assert keep.stat().st_mtime_ns == before
    assert file_digest(broken) == file_digest(built_aist / broken.relative_to(out))


def test_bad_sequences_are_skipped_and_listed(raw_aist, tmp_path):
    raw = copy_raw(raw_aist, tmp_path)
    ann = raw / "annotations"
    train = (ann / "splits" / "crossmodal_train.txt").read_text().split()
    (ann / "motions" / f"{train[0]}.pkl").write_bytes(b"not a pickle")  # unreadable
    with open(ann / "motions" / f"{train[1]}.pkl", "rb") as fh:
        m = pickle.load(fh)
    with open(ann / "motions" / f"{train[1]}.pkl", "wb") as fh:  # shorter than one segment
        pickle.dump({k: (v[:100] if k in ("smpl_poses", "smpl_trans") else v) for k, v in m.items()}, fh)
    (ann / "keypoints3d" / f"{train[2]}.pkl").unlink()  # missing file
    out = tmp_path / "ds"
    r = _build(raw, out)
    assert r.returncode == 0, r.stderr
    skipped = json.loads((out / "dataset.json").read_text())["builder"]["skipped"]
    reasons = {s["item"]: s["reason"] for s in skipped}
    assert "unreadable pickle" in reasons[train[0]]
    assert "shorter than one segment (100 frames" in reasons[train[1]]
    assert "missing annotation file" in reasons[train[2]]
    assert "skipped 3" in r.stderr
    r = _build(raw, tmp_path / "strict", "--strict")
    assert r.returncode == 2 and "3 skip(s) in all" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "strict" / "manifest.csv").exists()


def test_video_fps_mismatch_and_missing_music(raw_aist, tmp_path):
    from d2m_bench.data.video import write_mp4

    raw = copy_raw(raw_aist, tmp_path)
    test = (raw / "annotations" / "splits" / "crossmodal_test.txt").read_text().split()
    video = raw / "videos" / f"{test[0].replace('_cAll_', '_c01_')}.mp4"
    write_mp4(video, [np.zeros((32, 32, 3), np.uint8)] * 200, 30)
    (raw / "music" / "mLH4.wav").unlink()
    r = _build(raw, tmp_path / "ds", "--split", "test")
    assert r.returncode == 2  # nothing left to build: one line naming the first problem
    assert r.stderr.count("\n") == 1 and "no segment could be built" in r.stderr
    shutil.copy(raw_aist / "music" / "mLH4.wav", raw / "music" / "mLH4.wav")
    r = _build(raw, tmp_path / "ds", "--split", "test")
    assert r.returncode == 0
    reasons = json.loads((tmp_path / "ds" / "dataset.json").read_text())["builder"]["skipped"]
    assert reasons == [{"item": test[0], "reason": f"{video}: video at 30.000 fps, expected 60"}]


def test_missing_annotation_folder_is_one_line(tmp_path):
    r = run_cli("data", "build", "aistpp", "--annotations", tmp_path / "nope", "--music", tmp_path, "--out-dir", tmp_path / "o")
    assert r.returncode == 2 and "not an AIST++ annotations folder" in r.stderr and r.stderr.count("\n") == 1


def test_audio_demuxed_from_video_and_precomputed_visual(raw_aist, built_aist, tmp_path):
    vis = tmp_path / "vis"
    vis.mkdir()
    for p in (built_aist / "visual" / "test").glob("*.npy"):
        np.save(vis / p.name, np.arange(2048, dtype=np.float32)[None])  # the release stores (1, 2048)
    out = tmp_path / "ds"
    r = run_cli("data", "build", "aistpp", "--annotations", raw_aist / "annotations", "--videos", raw_aist / "videos",
                "--split", "test", "--visual", "precomputed", "--visual-dir", vis, "--out-dir", out)
    assert r.returncode == 0, r.stderr
    ds = Dataset(out)
    s = ds.segments("test")[0]
    assert ds.info.visual_dim == 2048 and np.load(out / s.visual).shape == (2048,)
    y, _ = load_audio(out / s.audio, None)
    ref, _ = load_audio(built_aist / s.audio, None)
    assert np.corrcoef(y, ref)[0, 1] > 0.99  # same clicks, through AAC


def test_release_layout_ingestion(built_aist, tmp_path):
    root = tmp_path / "dataset"
    ds = Dataset(built_aist)
    lines = {m: [] for m in ("audio", "motion", "video")}
    for s in ds.segments("test"):
        for m, src, ext in (("audio", s.audio, "wav"), ("motion", s.motion, "npy"), ("video", None, "npy")):
            dst = root / "aistplus" / f"{m}_s2" / "test" / f"{s.segment_id}.{ext}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src:
                shutil.copy(built_aist / src, dst)
            else:
                np.save(dst, np.ones((1, 2048), np.float32))
            lines[m].append(f"./aistplus/{m}_s2/test/{s.segment_id}.{ext}")
    for m, ls in lines.items():
        (root / f"aist_{m}_test_segment.txt").write_text("\n".join(ls) + "\n")
    out = tmp_path / "out"
    r = run_cli("data", "build", "aistpp-release", "--root", root, "--split", "test", "--out-dir", out)
    assert r.returncode == 0, r.stderr
    got = Dataset(out)
    assert [s.segment_id for s in got.segments("test")] == [s.segment_id for s in ds.segments("test")]
    s = got.segments("test")[1]
    assert s.genre == "gLH" and s.start_s == 2.0 and got.info.visual_extractor == "precomputed"
    assert np.array_equal(np.load(out / s.motion), np.load(built_aist / s.motion))
    assert run_cli("data", "info", out).returncode == 0
    (root / "aist_video_test_segment.txt").write_text(lines["video"][0] + "\n")
    r = run_cli("data", "build", "aistpp-release", "--root", root, "--split", "test", "--out-dir", tmp_path / "o2")
    assert r.returncode == 2 and "differ in length" in r.stderr


@pytest.fixture(scope="module")
def raw_tiktok(tmp_path_factory):
    return synth_tiktok(tmp_path_factory.mktemp("raw") / "tiktok")


def test_tiktok_build_with_openpose(raw_tiktok, tmp_path):
    out = tmp_path / "ds"
    r = run_cli("data", "build", "tiktok", "--videos", raw_tiktok / "videos", "--annotations",
                raw_tiktok / "annotations.csv", "--openpose", raw_tiktok / "openpose", "--out-dir", out)
    assert r.returncode == 0, r.stderr
    ds = Dataset(out)
    # synth_tiktok: train videos of 6.6 s and 4.6 s, a test video of 6.6 s (remainders dropped)
    assert len(ds.segments("train")) == 5 and len(ds.segments("test")) == 3
    assert ds.segments("test")[0].segment_id == "000007_7_188_seg1"
    s = ds.segments("test")[0]
    kp = np.load(out / s.keypoints)
    motion = np.load(out / s.motion)
    assert kp.shape == (60, 25, 3) and motion.shape == (60, 75)
    assert np.array_equal(motion, kp.reshape(60, 75))
    assert (kp[5] == 0).all() and (kp[4, :, 2] == np.float32(0.9)).all()  # frame 5 has nobody in its JSON
    vid = s.sequence
    frame7 = json.loads((raw_tiktok / "openpose" / f"{vid}_{7:012d}_keypoints.json").read_text())
    assert np.allclose(kp[7].reshape(-1), frame7["people"][0]["pose_keypoints_2d"])
    assert run_cli("data", "info", out).returncode == 0


def test_tiktok_hash_and_duration_checks(raw_tiktok, tmp_path):
    csv = (raw_tiktok / "annotations.csv").read_text().splitlines()
    rows = [csv[0], csv[1].replace(csv[1].split(",")[-1], "0" * 64)]
    parts = csv[2].split(",")
    parts[2] = "9.000"
    rows.append(",".join(parts))
    ann = tmp_path / "ann.csv"
    ann.write_text("\n".join(rows) + "\n")
    out = tmp_path / "ds"
    r = run_cli("data", "build", "tiktok", "--videos", raw_tiktok / "videos", "--annotations", ann,
                "--openpose", raw_tiktok / "openpose", "--out-dir", out)
    assert r.returncode == 2 and "no segment could be built (2 skipped" in r.stderr
    ann.write_text("video,duration\nnope_1_2,3.0\n")
    r = run_cli("data", "build", "tiktok", "--videos", raw_tiktok / "videos", "--annotations", ann, "--out-dir", out)
    assert r.returncode == 2 and "not in the D2M-GAN split lists" in r.stderr
    ann.write_text("foo,bar\n1,2\n")
    r = run_cli("data", "build", "tiktok", "--videos", raw_tiktok / "videos", "--annotations", ann, "--out-dir", out)
    assert r.returncode == 2 and "no video id column" in r.stderr


def _person_photo():
    """A real photograph of a person that an installed package ships (matplotlib's sample data)."""
    cbook = pytest.importorskip("matplotlib.cbook", reason="matplotlib (its sample photo) not installed")
    from matplotlib.image import imread

    return np.ascontiguousarray(imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))[..., :3])


def test_tiktok_mediapipe_pose(raw_tiktok, tmp_path):
    pytest.importorskip("mediapipe", reason="optional extra 'pose' (mediapipe==0.10.14) not installed")
    from d2m_bench.data.pose import MEDIAPIPE_TO_BODY25, MediapipePose, map_landmarks
    from d2m_bench.data.video import write_mp4
    from d2m_bench.synth.synthetic import click_track

    img = _person_photo()  # (600, 512, 3): Grace Hopper, facing the camera, head and shoulders
    videos = tmp_path / "videos"
    write_mp4(videos / "hopper.mp4", [img] * 75, 30, audio=click_track([0.5, 1.0, 1.5, 2.0], sr=22050, duration=2.5))
    square = next((raw_tiktok / "videos").glob("*.mp4"))
    shutil.copy(square, videos / "square.mp4")
    (tmp_path / "ann.csv").write_text("video_id,split\nhopper,test\nsquare,test\n")
    out = tmp_path / "ds"
    r = run_cli("data", "build", "tiktok", "--videos", videos, "--annotations", tmp_path / "ann.csv",
                "--out-dir", out, "--visual", "none")
    assert r.returncode == 0, r.stderr
    ds = Dataset(out)
    assert json.loads((out / "dataset.json").read_text())["builder"]["options"]["pose"].startswith("mediapipe-0.10.14")
    seg = next(s for s in ds.segments() if s.sequence == "hopper")
    kp = np.load(out / seg.keypoints)
    assert kp.shape == (60, 25, 3) and np.array_equal(np.load(out / seg.motion), kp.reshape(60, 75))
    found = kp[:, 0, 2] > 0.5
    assert found.sum() >= 54, f"a person in only {found.sum()} of 60 frames"
    k = kp[found]
    # Derived joints: Neck = mid-shoulders, MidHip = mid-hips, confidence the smaller of the pair.
    assert np.allclose(k[:, 1, :2], (k[:, 2, :2] + k[:, 5, :2]) / 2, atol=1e-3)
    assert np.allclose(k[:, 1, 2], np.minimum(k[:, 2, 2], k[:, 5, 2]))
    assert np.allclose(k[:, 8, :2], (k[:, 9, :2] + k[:, 12, :2]) / 2, atol=1e-3)
    assert (kp[:, [20, 23]] == 0).all()  # small toes: MediaPipe has none
    # Sides (a swapped left/right row in the table fails here): she faces the camera, so her
    # right eye, ear and shoulder are on the image's left; eyes above the nose above the neck.
    x, y = np.median(k[..., 0], 0), np.median(k[..., 1], 0)
    assert x[17] < x[15] < x[0] < x[16] < x[18] and x[2] < x[1] < x[5]
    assert max(y[15], y[16]) < y[0] < y[1]
    # Pixels of the video itself (the builder runs the model on a 640-wide copy and scales back):
    # within 20 px of MediaPipe on the original photo; a scaling slip would be off by ~100 px.
    est = MediapipePose()
    direct = map_landmarks(est(img), MEDIAPIPE_TO_BODY25)
    est.close()
    for j in (0, 1, 2, 5, 15, 16, 17, 18):
        assert np.hypot(x[j] - direct[j, 0], y[j] - direct[j, 1]) < 20, j
    # The synthetic video shows a square, not a person: nobody, written as zeros (OpenPose).
    sq = [np.load(out / s.keypoints) for s in ds.segments() if s.sequence == "square"]
    assert len(sq) >= 2 and not np.any(sq)


def test_synth_cli_writes_official_layout(tmp_path):
    r = run_cli("data", "synth", "aistpp", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    ann = tmp_path / "a" / "annotations"
    seq = (ann / "splits" / "crossmodal_test.txt").read_text().split()[0]
    with open(ann / "keypoints2d" / f"{seq}.pkl", "rb") as fh:
        k2 = pickle.load(fh)
    n = k2["keypoints2d"].shape[1]
    assert k2["keypoints2d"].shape == (9, n, 17, 3) and k2["det_scores"].shape == (9, n) and k2["timestamps"].shape == (n,)
    with open(ann / "motions" / f"{seq}.pkl", "rb") as fh:
        m = pickle.load(fh)
    assert m["smpl_poses"].shape == (n, 72) and m["smpl_trans"].shape == (n, 3) and m["smpl_scaling"].shape == (1,)
    from d2m_bench.data.video import probe

    v = probe(tmp_path / "a" / "videos" / f"{seq.replace('_cAll_', '_c01_')}.mp4")
    assert v.fps == 60 and abs(v.duration - n / 60) < 0.05 and v.has_audio


def _noise_video(path, seconds, fps=60, seed=0):
    """A real mp4 of moving noise (non-zero optical flow everywhere), ``seconds`` long."""
    from d2m_bench.data.video import write_mp4

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
    write_mp4(path, (np.roll(base, 2 * f, axis=1) for f in range(int(seconds * fps))), fps)


def test_video_shorter_than_motion_skips_the_uncovered_segments(raw_aist, tmp_path):
    raw = copy_raw(raw_aist, tmp_path)
    seq = "gLH_sBM_cAll_d18_mLH4_ch02"  # 3 full windows (6.6 s of motion)
    video = raw / "videos" / f"{seq.replace('_cAll_', '_c01_')}.mp4"
    _noise_video(video, 3.5)  # truncated: covers only the first window
    out = tmp_path / "ds"
    r = _build(raw, out, "--split", "test")
    assert r.returncode == 0, r.stderr
    ids = [s.segment_id for s in Dataset(out).segments("test") if s.sequence == seq]
    assert ids == ["gLH_sBM_c01_d18_mLH4_ch02_seg1"]
    skipped = json.loads((out / "dataset.json").read_text())["builder"]["skipped"]
    assert [s["item"] for s in skipped] == [f"gLH_sBM_c01_d18_mLH4_ch02_seg{k}" for k in (2, 3)]
    assert "window 2.00-4.00 s not covered (the video ends at 3.50 s)" in skipped[0]["reason"]
    assert "skipped 2" in r.stderr
    assert not (out / "audio" / "test" / "gLH_sBM_c01_d18_mLH4_ch02_seg2.wav").exists()
    v = np.load(out / "visual" / "test" / "gLH_sBM_c01_d18_mLH4_ch02_seg1.npy")
    assert v[56] > 0.5  # mean flow magnitude of 2-px-per-frame noise, not a vector of zeros
    # A video shorter than the first window skips the whole sequence with its reason.
    _noise_video(video, 1.5)
    r = _build(raw, tmp_path / "ds2", "--split", "test")
    skipped = json.loads((tmp_path / "ds2" / "dataset.json").read_text())["builder"]["skipped"]
    assert skipped == [{"item": seq, "reason": f"{video}: video is 1.50 s, shorter than the first segment "
                                               "(the motion lasts 6.62 s)"}]


def test_flow_features_give_none_for_a_window_past_the_end(tmp_path):
    from d2m_bench.data.visual import flow_features

    _noise_video(tmp_path / "v.mp4", 3.0)
    inside, past = flow_features(tmp_path / "v.mp4", [(0.0, 2.0), (2.0, 4.0)])
    assert past is None
    assert inside.shape == (64,) and inside[56] > 0.5


def test_flow_stats_without_opencv_is_one_line_with_the_install_hint(raw_aist, tmp_path):
    fake = tmp_path / "nocv"
    fake.mkdir()
    (fake / "cv2.py").write_text("raise ImportError('No module named cv2')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(fake), os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "ds"
    r = run_cli("data", "build", "aistpp", "--annotations", raw_aist / "annotations", "--music", raw_aist / "music",
                "--videos", raw_aist / "videos", "--out-dir", out, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "flow-stats visual extractor needs OpenCV: pip install 'd2m-bench[video]'" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("seconds", ["0", "-2"])
@pytest.mark.parametrize("kind", ["aistpp", "tiktok"])
def test_segment_seconds_must_be_positive(kind, seconds, raw_aist, raw_tiktok, tmp_path):
    src = (["--annotations", raw_aist / "annotations", "--music", raw_aist / "music"] if kind == "aistpp" else
           ["--videos", raw_tiktok / "videos", "--annotations", raw_tiktok / "annotations.csv"])
    r = run_cli("data", "build", kind, *src, "--segment-seconds", seconds, "--out-dir", tmp_path / "ds")
    assert r.returncode == 2 and "Invalid value for '--segment-seconds'" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "ds").exists()


@pytest.mark.parametrize("seconds", ["0.01", "inf", "2.01"])
def test_segment_seconds_must_be_whole_pose_frames(seconds, raw_aist, tmp_path):
    r = _build(raw_aist, tmp_path / "ds", "--segment-seconds", seconds)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"--segment-seconds {float(seconds)} must be a positive multiple of 1/30 s" in r.stderr
    assert not (tmp_path / "ds").exists()


def test_build_functions_check_segment_seconds(raw_aist, raw_tiktok, tmp_path):
    from d2m_bench.data.aistpp import build_aistpp
    from d2m_bench.data.tiktok import build_tiktok
    from d2m_bench.errors import UserError

    with pytest.raises(UserError, match="positive multiple"):
        build_aistpp(raw_aist / "annotations", tmp_path / "a", music=raw_aist / "music", seconds=0.0)
    with pytest.raises(UserError, match="positive multiple"):
        build_tiktok(raw_tiktok / "videos", raw_tiktok / "annotations.csv", tmp_path / "t", seconds=-1.0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "t").exists()


def _killed_after(n, real):
    """A stand-in for build_sequence that builds ``n`` sequences, then dies like a killed build."""
    done = []

    def fn(job):
        if len(done) == n:
            raise KeyboardInterrupt
        done.append(job.sequence)
        return real(job)
    return fn, done


def test_rebuild_with_other_parameters_retires_the_manifest_then_resumes(raw_aist, built_aist, tmp_path, monkeypatch):
    import d2m_bench.data.aistpp as aistpp

    out = tmp_path / "ds"
    shutil.copytree(built_aist, out)
    old_audio = {p.name: file_digest(p) for p in (out / "audio" / "test").glob("*.wav")}
    real = aistpp.build_sequence
    # Other parameters: audio demuxed from the videos (same shapes as the music-wav audio).
    args = dict(videos=raw_aist / "videos", splits=("test",), visual="none")
    fn, done = _killed_after(1, real)
    monkeypatch.setattr(aistpp, "build_sequence", fn)
    with pytest.raises(KeyboardInterrupt):
        aistpp.build_aistpp(raw_aist / "annotations", out, **args)
    assert not (out / "manifest.csv").exists() and (out / ".manifest.previous.csv").is_file()
    r = run_cli("data", "info", out)
    assert r.returncode == 2 and "not a built dataset" in r.stderr
    monkeypatch.setattr(aistpp, "build_sequence", real)
    segs, skips, stats = aistpp.build_aistpp(raw_aist / "annotations", out, **args)
    first = sum(s.sequence == done[0] for s in segs)
    assert len(segs) == 5 and 0 < first < 5
    # The interrupted build's own files are resumed; none of the old build's files are.
    assert stats["segments_resumed"] == first and stats["segments_written"] == 5 - first
    new_audio = {p.name: file_digest(out / "audio" / "test" / p.name) for p in (out / "audio" / "test").glob("*.wav")}
    assert new_audio.keys() == old_audio.keys() and all(new_audio[k] != old_audio[k] for k in old_audio)
    assert Dataset(out).info.builder["options"]["audio"].startswith("demuxed")
    assert not (out / ".build.json").exists()


def test_killed_rebuild_with_the_same_parameters_keeps_the_manifest(raw_aist, built_aist, tmp_path, monkeypatch):
    import d2m_bench.data.aistpp as aistpp

    out = tmp_path / "ds"
    shutil.copytree(built_aist, out)
    before = (out / "manifest.csv").read_bytes()
    fn, _ = _killed_after(0, aistpp.build_sequence)
    monkeypatch.setattr(aistpp, "build_sequence", fn)
    with pytest.raises(KeyboardInterrupt):
        aistpp.build_aistpp(raw_aist / "annotations", out, music=raw_aist / "music", videos=raw_aist / "videos")
    assert (out / "manifest.csv").read_bytes() == before  # nothing rewritten: still the complete build


def test_write_manifest_failure_leaves_no_temp_file_and_the_old_manifest(built_aist, tmp_path):
    from d2m_bench.data.dataset import write_manifest

    out = tmp_path / "ds"
    shutil.copytree(built_aist, out)
    before = (out / "manifest.csv").read_bytes(), (out / "dataset.json").read_bytes()
    ds = Dataset(out)
    with pytest.raises(AttributeError):
        write_manifest(out, [*ds.segments()[:2], object()], ds.info)  # fails half-way through the rows
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["dataset.json", "manifest.csv"]
    assert ((out / "manifest.csv").read_bytes(), (out / "dataset.json").read_bytes()) == before
