"""Visual feature extractors: a registry of named, versioned, per-segment vector extractors.

``precomputed`` reads one vector per segment from a folder (the D2M-GAN release's 2048-d I3D
``.npy``). ``flow-stats`` is computed here on CPU without downloaded weights: dense optical
flow (OpenCV Farneback) between frames sampled at ``fps`` on a ``width``-pixel-wide grey copy,
summarised per 2-s segment into a 64-d vector (a window the video does not cover to its end
gets None, never a vector of zeros: the builders skip and list that segment):

    [0:16)  histogram of flow magnitude (pixels per sampled frame), log-spaced edges, sums to 1
    [16:24) histogram of flow direction in 8 sectors, weighted by magnitude, sums to 1
    [24:40) mean magnitude in a 4x4 spatial grid (row-major, top-left first)
    [40:56) motion-energy curve: mean magnitude per flow field, linearly resampled to 16 points
    [56:64) mean, std, 90th percentile and max of magnitude; mean and std of the energy curve;
            mean absolute grey-level frame difference (0..1); fraction of pixels moving > 0.5 px
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError

FLOW_DIM = 64
_MAG_EDGES = np.concatenate([[0.0], np.geomspace(0.05, 20.0, 15), [np.inf]])


@dataclass
class Extractor:
    name: str
    dim: int
    needs_video: bool
    params: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"name": self.name, "dim": self.dim, **self.params}


def flow_summary(flows, diffs) -> np.ndarray:
    """64-d summary of a list of (H, W, 2) flow fields and mean frame differences (see module doc)."""
    out = np.zeros(FLOW_DIM, np.float32)
    if not flows:
        return out
    f = np.stack(flows).astype(np.float32)
    mag = np.hypot(f[..., 0], f[..., 1])
    ang = np.arctan2(f[..., 1], f[..., 0])
    hist = np.histogram(mag, bins=_MAG_EDGES)[0].astype(np.float64)
    out[0:16] = hist / max(1.0, hist.sum())
    sector = ((ang + np.pi) / (2 * np.pi) * 8).astype(int) % 8
    dirs = np.bincount(sector.ravel(), weights=mag.ravel(), minlength=8)
    out[16:24] = dirs / dirs.sum() if dirs.sum() > 0 else 0.0
    h, w = mag.shape[1:]
    grid = mag.mean(0)[: h // 4 * 4, : w // 4 * 4].reshape(4, h // 4, 4, w // 4).mean((1, 3))
    out[24:40] = grid.ravel()
    energy = mag.mean((1, 2))
    out[40:56] = np.interp(np.linspace(0, len(energy) - 1, 16), np.arange(len(energy)), energy)
    out[56:64] = [mag.mean(), mag.std(), np.percentile(mag, 90), mag.max(), energy.mean(), energy.std(),
                  float(np.mean(diffs)) if len(diffs) else 0.0, float((mag > 0.5).mean())]
    return out


def _cv2():
    try:
        import cv2
    except ImportError:
        raise UserError("the flow-stats visual extractor needs OpenCV: pip install 'd2m-bench[video]' "
                        "(or --visual precomputed / none)") from None
    return cv2


def flow_features(video_path, windows, *, fps=15.0, width=128) -> list[np.ndarray | None]:
    """One 64-d ``flow_summary`` per ``(start_s, end_s)`` window, from a single decoding pass.

    None for a window with a sampled time the video has no frame for (the video ends inside it).
    """
    cv2 = _cv2()
    from .video import frames_at

    grids = [np.arange(int(round((e - s) * fps))) / fps + s for s, e in windows]
    times = np.concatenate(grids) if grids else np.zeros(0)
    owner = np.concatenate([np.full(len(g), i) for i, g in enumerate(grids)]) if grids else np.zeros(0, int)
    order = np.argsort(times, kind="stable")
    flows = [[] for _ in windows]
    diffs = [[] for _ in windows]
    last = {}  # window -> previous grey frame
    seen = np.zeros(len(windows), int)
    for j, grey in frames_at(video_path, times[order], width=width, fmt="gray"):
        w = int(owner[order[j]])
        seen[w] += 1
        if w in last:
            prev = last[w]
            flows[w].append(cv2.calcOpticalFlowFarneback(prev, grey, None, 0.5, 3, 15, 3, 5, 1.2, 0))
            diffs[w].append(float(np.mean(np.abs(grey.astype(np.float32) - prev)) / 255.0))
        last[w] = grey
    return [flow_summary(fl, df) if seen[i] == len(grids[i]) else None
            for i, (fl, df) in enumerate(zip(flows, diffs))]


def load_precomputed(folder, segment_id: str, *, dim=None) -> np.ndarray:
    """``<folder>/<segment_id>.npy`` flattened to a vector (the release stores (1, 2048))."""
    path = Path(folder) / f"{segment_id}.npy"
    try:
        v = np.load(path, allow_pickle=False).astype(np.float32).reshape(-1)
    except FileNotFoundError:
        raise UserError("missing precomputed visual feature", path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"unreadable .npy ({exc})", path) from None
    if dim is not None and v.size != dim:
        raise UserError(f"visual feature has {v.size} values, expected {dim}", path)
    return v


EXTRACTORS = {
    "flow-stats": lambda: Extractor("flow-stats-v1", FLOW_DIM, True,
                                    {"method": "opencv-farneback", "fps": 15.0, "width": 128}),
    "precomputed": lambda: Extractor("precomputed", 2048, False, {"source": "release .npy (I3D, 2048-d)"}),
    "none": lambda: Extractor("", 0, False),
}


def get_extractor(name: str) -> Extractor:
    """The named extractor; its optional dependency is checked here, so a build stops at once
    with the install hint instead of skipping every video for the same reason."""
    if name not in EXTRACTORS:
        raise UserError(f"unknown visual extractor '{name}' ({', '.join(EXTRACTORS)})")
    ext = EXTRACTORS[name]()
    if ext.params.get("method") == "opencv-farneback":
        _cv2()
    return ext


def extract(ext: Extractor, *, video=None, windows=(), ids=(), folder=None) -> list[np.ndarray | None]:
    """Features of one video's segments under ``ext``: None entries for the ``none`` extractor
    and, under ``flow-stats``, for windows the video does not reach the end of."""
    if ext.name == "":
        return [None] * len(ids)
    if ext.name == "precomputed":
        if folder is None:
            raise UserError("the precomputed visual extractor needs --visual-dir")
        return [load_precomputed(folder, i, dim=ext.dim) for i in ids]
    return flow_features(video, windows, fps=ext.params["fps"], width=ext.params["width"])
