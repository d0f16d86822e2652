"""CMT's video-rhythm inputs computed in-tree: optical-flow magnitude, visual beats, visual tempo.

CMT (Di et al., ACM MM 2021; wzk1015/video-bgm-generation ``src/video2npz``) conditions its
transformer on the video alone:

- flow magnitude per frame: OpenCV Farneback between consecutive grayscale frames of the video
  resized to 360 p, parameters (pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5,
  poly_sigma 1.2, flags 0), magnitude = mean |flow| over both components and all pixels (as
  ``optical_flow.py`` computes it); per bar = mean over ``round(fps * 240 / tempo)`` frames;
- visual beats and tempo: upstream uses visbeat3 (directogram flux). Here, an approximation:
  the impact envelope u_t = max(0, m_{t-1} - m_t) (motion that stops: deceleration of the
  flow magnitude m), beats = its peaks at least ``min_gap`` s apart above ``threshold`` x max,
  tempo = librosa's tempo estimate on u (frame rate = video fps). A beat at time t sits at
  sixteenth i = round(t / 60 * tempo * 4): bar = i // 16, tick = i % 16, as upstream.

The metadata dict mirrors CMT's metadata.json (duration, tempo, vbeats, flow_magnitude_per_bar),
so ``<id>.json`` written here is what the cmt adapter reads for its 120 / tempo stretch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from d2m_bench.errors import UserError

FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)
UPSTREAM = "wzk1015/video-bgm-generation@78eb9a5 src/video2npz"


def read_gray_frames(path, *, max_height: int = 360):
    """Grayscale frames of a video (resized so the height is at most ``max_height``) and its fps."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise UserError("no such video", path)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise UserError("unreadable video", path)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        if h > max_height:
            frame = cv2.resize(frame, (int(round(w * max_height / h)), max_height), interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    cap.release()
    if len(frames) < 2 or fps <= 0:
        raise UserError(f"video has {len(frames)} decodable frames at {fps} fps; need at least 2", path)
    return frames, fps


def flow_magnitudes(frames) -> np.ndarray:
    """mean |flow| between each pair of consecutive grayscale frames (length T - 1)."""
    import cv2

    out = np.empty(max(0, len(frames) - 1))
    for i in range(1, len(frames)):
        flow = cv2.calcOpticalFlowFarneback(frames[i - 1], frames[i], None, *FARNEBACK)
        out[i - 1] = float(np.mean(np.abs(flow)))
    return out


def impact_envelope(flow) -> np.ndarray:
    """u_t = max(0, m_{t-1} - m_t), u_0 = 0: large where motion stops."""
    m = np.asarray(flow, dtype=np.float64)
    return np.concatenate([[0.0], np.maximum(0.0, -np.diff(m))]) if len(m) else m


def visual_beats(flow, *, fps: float, min_gap: float = 0.2, threshold: float = 0.1):
    """(times in s, weights) of peaks of the impact envelope; time of index t is (t + 1) / fps
    because flow index t is the motion between frames t and t + 1."""
    from scipy.signal import find_peaks

    u = impact_envelope(flow)
    if not len(u) or u.max() <= 0:
        return np.zeros(0), np.zeros(0)
    peaks, _ = find_peaks(u, height=threshold * u.max(), distance=max(1, int(round(min_gap * fps))))
    return (peaks + 1) / float(fps), u[peaks] / u.max()


def visual_tempo(flow, *, fps: float, start_bpm: float = 120.0) -> float:
    """Tempo (bpm) of the impact envelope by librosa's autocorrelation tempo estimator."""
    import librosa

    u = impact_envelope(flow)
    if not len(u) or u.max() <= 0:
        return float(start_bpm)
    tempo = librosa.feature.tempo(onset_envelope=u.astype(np.float32), sr=float(fps), hop_length=1,
                                  start_bpm=start_bpm)
    return float(np.atleast_1d(tempo)[0])


def cmt_metadata(flow, *, fps: float, n_frames: int | None = None) -> dict:
    """CMT's metadata.json entries from a per-frame flow magnitude track."""
    flow = np.asarray(flow, dtype=np.float64)
    tempo = visual_tempo(flow, fps=fps)
    times, weights = visual_beats(flow, fps=fps)
    vbeats = []
    for t, w in zip(times, weights):
        i = int(round(t / 60.0 * tempo * 4))
        vbeats.append({"start_time": round(float(t), 4), "bar": i // 16, "tick": i % 16, "weight": round(float(w), 4)})
    fpb = max(1, int(round(fps * 4 * 60 / tempo)))
    per_bar = [float(np.mean(flow[i:i + fpb])) for i in range(0, len(flow), fpb)]
    n = len(flow) + 1 if n_frames is None else n_frames
    return {"duration": n / float(fps), "tempo": tempo, "fps": fps, "vbeats": vbeats,
            "flow_magnitude_per_bar": per_bar, "flow_magnitude": [round(float(v), 5) for v in flow],
            "extractor": "d2m-bench: Farneback flow as CMT; visual beats/tempo approximate visbeat3 "
                         "(impact-envelope peaks, librosa tempo)", "upstream": UPSTREAM}


def video_metadata(path, *, max_height: int = 360) -> dict:
    frames, fps = read_gray_frames(path, max_height=max_height)
    return cmt_metadata(flow_magnitudes(frames), fps=fps, n_frames=len(frames))
