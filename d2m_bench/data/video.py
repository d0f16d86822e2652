"""Video input/output with PyAV: probing, frames sampled at given times, small mp4 writing."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.atomic import replacing
from ..errors import UserError


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    duration: float  # seconds
    width: int
    height: int
    has_audio: bool


def probe(path) -> VideoInfo:
    """Frame rate, duration and size of a video; UserError naming the file if unreadable."""
    import av

    path = Path(path)
    if not path.is_file():
        raise UserError("no such video", path)
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise UserError("no video stream", path)
            s = c.streams.video[0]
            fps = float(s.average_rate or s.guessed_rate or 0)
            if s.duration is not None and s.time_base is not None:
                duration = float(s.duration * s.time_base)
            elif c.duration is not None:
                duration = c.duration / 1_000_000
            else:
                duration = (s.frames or 0) / fps if fps else 0.0
            return VideoInfo(fps, duration, s.codec_context.width, s.codec_context.height, bool(c.streams.audio))
    except av.error.FFmpegError as exc:
        raise UserError(f"unreadable video ({exc.__class__.__name__})", path) from None


def frames_at(path, times, *, width=None, fmt="gray"):
    """Yield ``(i, frame)`` for each of the sorted ``times`` (seconds): the decoded frame whose
    timestamp is nearest. Targets past the last frame by more than one frame period are not
    yielded. ``width`` rescales (aspect kept, even height); ``fmt`` is "gray" or "rgb24".
    """
    import av

    times = np.asarray(times, dtype=np.float64)
    if len(times) == 0:
        return
    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            size = {}
            if width:
                w0, h0 = s.codec_context.width, s.codec_context.height
                size = {"width": int(width), "height": max(2, int(round(h0 * width / w0 / 2)) * 2)}
            period = 1.0 / float(s.average_rate or 30)
            j, prev = 0, None  # prev = (time, frame)
            for frame in c.decode(s):
                t = float(frame.time) if frame.time is not None else (prev[0] + period if prev else 0.0)
                while j < len(times) and times[j] <= t:
                    if prev is not None and times[j] - prev[0] < t - times[j]:
                        yield j, prev[1]
                    else:
                        yield j, frame.to_ndarray(format=fmt, **size)
                    j += 1
                if j >= len(times):
                    return
                prev = (t, frame.to_ndarray(format=fmt, **size))
            while prev is not None and j < len(times) and times[j] - prev[0] <= period * 1.01:
                yield j, prev[1]
                j += 1
    except av.error.FFmpegError as exc:
        raise UserError(f"unreadable video ({exc.__class__.__name__})", path) from None


def write_mp4(path, frames, fps: int, *, audio=None, sr: int = 22050) -> None:
    """Write ``frames`` (iterable of (H, W, 3) uint8) as H.264 (or MPEG-4) with optional AAC mono audio.

    The file appears atomically (temporary name, then rename).
    """
    import av

    with replacing(path) as tmp, av.open(str(tmp), "w") as c:
        try:
            vs = c.add_stream("libx264", rate=fps)
            vs.options = {"preset": "ultrafast", "crf": "18"}
        except Exception:  # an FFmpeg build without x264
            vs = c.add_stream("mpeg4", rate=fps)
        vs.pix_fmt = "yuv420p"
        frames = iter(frames)
        first = next(frames)
        vs.height, vs.width = first.shape[:2]
        astream = None
        if audio is not None:
            astream = c.add_stream("aac", rate=sr)
            astream.layout = "mono"
        for img in (first, *frames):
            for packet in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                c.mux(packet)
        for packet in vs.encode():
            c.mux(packet)
        if astream is not None:
            y = np.asarray(audio, dtype=np.float32)
            hop = 1024
            for i in range(0, len(y), hop):
                af = av.AudioFrame.from_ndarray(y[None, i:i + hop].copy(), format="fltp", layout="mono")
                af.sample_rate = sr
                af.pts = i
                for packet in astream.encode(af):
                    c.mux(packet)
            for packet in astream.encode():
                c.mux(packet)
