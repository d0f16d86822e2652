"""2-D pose: OpenPose BODY_25 JSON, MediaPipe (BlazePose, 33 landmarks) mapped to BODY_25 / COCO-17.

MediaPipe 33 -> OpenPose BODY_25 (x, y in pixels, confidence = landmark visibility):

    BODY_25          MediaPipe                 BODY_25          MediaPipe
    0  Nose          0 nose                    13 LKnee         25 left_knee
    1  Neck          mean(11, 12) shoulders    14 LAnkle        27 left_ankle
    2  RShoulder     12 right_shoulder         15 REye          5 right_eye
    3  RElbow        14 right_elbow            16 LEye          2 left_eye
    4  RWrist        16 right_wrist            17 REar          8 right_ear
    5  LShoulder     11 left_shoulder          18 LEar          7 left_ear
    6  LElbow        13 left_elbow             19 LBigToe       31 left_foot_index
    7  LWrist        15 left_wrist             20 LSmallToe     (none: 0, 0, 0)
    8  MidHip        mean(23, 24) hips         21 LHeel         29 left_heel
    9  RHip          24 right_hip              22 RBigToe       32 right_foot_index
    10 RKnee         26 right_knee             23 RSmallToe     (none: 0, 0, 0)
    11 RAnkle        28 right_ankle            24 RHeel         30 right_heel
    12 LHip          23 left_hip

Derived joints (Neck, MidHip) take the mean position and the smaller visibility of the
pair. Joints MediaPipe has no counterpart for are written as OpenPose writes an undetected
joint: (0, 0, 0). A frame without a person is all zeros, as in OpenPose.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import UserError

# BODY_25 index -> MediaPipe index, a pair of indices (mean), or None (not available).
MEDIAPIPE_TO_BODY25 = [0, (11, 12), 12, 14, 16, 11, 13, 15, (23, 24), 24, 26, 28, 23, 25, 27,
                       5, 2, 8, 7, 31, None, 29, 32, None, 30]
# COCO-17 index -> MediaPipe index.
MEDIAPIPE_TO_COCO17 = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]


def map_landmarks(landmarks, table):
    """(33, 3) x, y, visibility -> (len(table), 3) following ``table`` (see the module docstring)."""
    lm = np.asarray(landmarks, dtype=np.float32)
    out = np.zeros((len(table), 3), np.float32)
    for j, src in enumerate(table):
        if src is None:
            continue
        if isinstance(src, tuple):
            a, b = lm[src[0]], lm[src[1]]
            out[j, :2] = (a[:2] + b[:2]) / 2
            out[j, 2] = min(a[2], b[2])
        else:
            out[j] = lm[src]
    return out


def openpose_frame(path) -> np.ndarray:
    """BODY_25 (25, 3) of ``people[0]`` in one OpenPose JSON (zeros when nobody was found)."""
    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise UserError(f"OpenPose JSON holds a {type(data).__name__}, expected an object with 'people'", path)
        people = data.get("people") or []
        if not isinstance(people, list) or not all(isinstance(p, dict) for p in people):
            raise UserError("OpenPose JSON 'people' is not a list of objects", path)
        if not people:
            return np.zeros((25, 3), np.float32)
        kp = np.asarray(people[0]["pose_keypoints_2d"], dtype=np.float32)
    except FileNotFoundError:
        raise UserError("missing OpenPose JSON", path) from None
    except OSError as exc:
        raise UserError(f"unreadable OpenPose JSON ({exc.strerror})", path) from None
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise UserError(f"unreadable OpenPose JSON ({exc.__class__.__name__})", path) from None
    if kp.size != 75:
        raise UserError(f"pose_keypoints_2d has {kp.size} values, expected 75 (BODY_25)", path)
    return kp.reshape(25, 3)


def openpose_sequence(json_dir, video: str, frame_indices) -> np.ndarray:
    """(len(frame_indices), 25, 3) from ``<json_dir>/<video>_<frame:012d>_keypoints.json``."""
    json_dir = Path(json_dir)
    return np.stack([openpose_frame(json_dir / f"{video}_{int(i):012d}_keypoints.json") for i in frame_indices])


class MediapipePose:
    """BlazePose (MediaPipe 0.10.14 legacy ``solutions.pose``), tracking across a video's frames.

    ``model_complexity=1`` because its model ships inside the wheel (0 and 2 would download).
    """

    name = "mediapipe-0.10.14-blazepose-full"

    def __init__(self):
        try:
            import mediapipe as mp
        except ImportError:
            raise UserError("pose estimation needs mediapipe: pip install 'd2m-bench[pose]' "
                            "(or give --openpose DIR with OpenPose JSON)") from None
        self._pose = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1,
                                            enable_segmentation=False, min_detection_confidence=0.5)

    def __call__(self, rgb) -> np.ndarray | None:
        """(33, 3) x, y in pixels and visibility, or None when no person is found."""
        res = self._pose.process(rgb)
        if res.pose_landmarks is None:
            return None
        h, w = rgb.shape[:2]
        return np.array([[p.x * w, p.y * h, p.visibility] for p in res.pose_landmarks.landmark], np.float32)

    def close(self):
        self._pose.close()


def estimate_body25(video_path, times, *, width=640) -> np.ndarray:
    """BODY_25 (len(times), 25, 3) by MediaPipe on the frames nearest to ``times``."""
    from .video import frames_at, probe

    native_width = probe(video_path).width
    est = MediapipePose()
    out = np.zeros((len(times), 25, 3), np.float32)
    try:
        for i, rgb in frames_at(video_path, times, width=width, fmt="rgb24"):
            lm = est(rgb)
            if lm is not None:
                lm[:, :2] *= native_width / rgb.shape[1]  # back to the video's own pixels
                out[i] = map_landmarks(lm, MEDIAPIPE_TO_BODY25)
    finally:
        est.close()
    return out
