"""Segmentation/split logic against the real D2M-GAN lists, Rodrigues, pose mapping tables."""
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from d2m_bench.data import list_stems, shipped_list
from d2m_bench.data.pose import MEDIAPIPE_TO_BODY25, MEDIAPIPE_TO_COCO17, map_landmarks
from d2m_bench.data.rotations import aistpp_motion_features, axis_angle_to_matrix
from d2m_bench.data.segments import aistpp_split, genre_onehot, parse_aist_name, plan_segments, windows

REFERENCE = Path("/work/shared/reference/d2m_gan_splits")


def _frames_from_list(ids, extra):
    """A frame count per sequence consistent with the list: K segments <=> K*120 .. K*120+119 frames.

    Derived from the list itself (the real motion files are not here), so the test below checks
    split membership, camera naming, 1..K numbering and remainder dropping, not the real K."""
    k = defaultdict(int)
    for sid in ids:
        video, n = re.match(r"(.*)_seg(\d+)$", sid).groups()
        k[video.replace("_c01_", "_cAll_")] = max(k[video.replace("_c01_", "_cAll_")], int(n))
    return {seq: n * 120 + extra for seq, n in k.items()}


@pytest.mark.parametrize("split,count", [("test", 86), ("train", 6632)])
@pytest.mark.parametrize("extra", [0, 61, 119])
def test_split_and_segmentation_reproduce_the_d2m_gan_ids(split, count, extra):
    listed = list_stems(f"aist_audio_{split}_segment.txt")
    assert len(listed) == count
    frames = _frames_from_list(listed, extra)
    seqs = aistpp_split(split)  # shipped cross-modal split, ignore list NOT applied (as D2M-GAN)
    planned, short = plan_segments(seqs, frames, camera="c01")
    ids = [f"{video}_seg{w.index}" for _, video, w in planned]
    assert short == []
    assert len(ids) == len(set(ids)) == count
    assert set(ids) == set(listed)


def test_one_frame_less_loses_exactly_one_segment_per_sequence():
    listed = list_stems("aist_audio_test_segment.txt")
    frames = {s: n - 1 for s, n in _frames_from_list(listed, 0).items()}
    planned, _ = plan_segments(aistpp_split("test"), frames)
    assert len(planned) == 86 - 20


def test_dropping_the_ignore_list_removes_28_train_sequences():
    assert len(aistpp_split("train")) == 980
    kept = aistpp_split("train", drop_ignored=True)
    assert len(kept) == 952
    assert not set(kept) & set(shipped_list("ignore_list.txt"))
    assert len(aistpp_split("test", drop_ignored=True)) == 20


@pytest.mark.parametrize("split", ["test", "train"])
def test_genre_labels_from_names_match_the_release_arrays(split):
    path = REFERENCE / f"{split}_genre.npy"
    if not path.is_file():
        pytest.skip(f"reference arrays not present: {path}")
    ours = np.array(genre_onehot(list_stems(f"aist_audio_{split}_segment.txt")))
    assert np.array_equal(ours, np.load(path).astype(int))


def test_windows_drop_the_remainder_and_start_at_zero():
    w = windows(359, fps=60, seconds=2)
    assert [(x.index, x.start_frame, x.end_frame) for x in w] == [(1, 0, 120), (2, 120, 240)]
    assert windows(119) == []
    assert [x.end_frame for x in windows(90, fps=30, seconds=1.5)] == [45, 90]


def test_aist_names_and_nominal_tempo():
    n = parse_aist_name("gHO_sBM_c01_d20_mHO5_ch02_seg3")
    assert (n.genre, n.camera, n.music_id, n.tempo_bpm) == ("gHO", "c01", "mHO5", 135.0)
    assert parse_aist_name("gBR_sFM_cAll_d04_mBR4_ch07").tempo_bpm == 120.0
    assert parse_aist_name("000007_7_188_seg3") is None


def test_rodrigues_matches_scipy_and_handles_zero():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 1.5, (50, 3))
    r[0] = 0.0
    r[1] = [1e-9, 0, 0]
    ours = axis_angle_to_matrix(r)
    assert np.allclose(ours, Rotation.from_rotvec(r).as_matrix(), atol=1e-12)
    # quarter turn about z maps x to y
    assert np.allclose(axis_angle_to_matrix([0, 0, np.pi / 2]) @ [1, 0, 0], [0, 1, 0])


def test_motion_feature_layout():
    rng = np.random.default_rng(1)
    poses = rng.normal(0, 0.5, (4, 72))
    trans = rng.normal(0, 50, (4, 3))
    f = aistpp_motion_features(poses, trans, np.array([2.0]))
    assert f.shape == (4, 219) and f.dtype == np.float32
    assert np.allclose(f[:, :3], trans / 2.0, atol=1e-4)
    assert np.allclose(f[:, 3 + 9 * 5:3 + 9 * 6].reshape(4, 3, 3),
                       Rotation.from_rotvec(poses[:, 15:18]).as_matrix(), atol=1e-6)


def test_mediapipe_to_body25_table():
    lm = np.zeros((33, 3), np.float32)
    lm[:, 0] = np.arange(33)  # x = landmark index identifies the source
    lm[:, 1] = 100 + np.arange(33)
    lm[:, 2] = np.linspace(0.5, 1.0, 33)
    b = map_landmarks(lm, MEDIAPIPE_TO_BODY25)
    assert b.shape == (25, 3)
    assert b[2, 0] == 12 and b[5, 0] == 11 and b[9, 0] == 24 and b[12, 0] == 23 and b[24, 0] == 30
    assert b[1, 0] == 11.5 and b[1, 2] == lm[11, 2]  # Neck = mid-shoulders, min visibility
    assert b[8, 0] == 23.5 and b[8, 1] == 123.5  # MidHip = mid-hips
    assert (b[20] == 0).all() and (b[23] == 0).all()  # small toes: not available -> undetected
    c = map_landmarks(lm, MEDIAPIPE_TO_COCO17)
    assert c.shape == (17, 3) and list(c[:, 0].astype(int)) == MEDIAPIPE_TO_COCO17
