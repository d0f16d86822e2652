"""Feeding mono float audio to a PyAV encoder stream, frame by frame."""
from __future__ import annotations

import numpy as np


def encode_mono(container, stream, y, sr: int, *, hop: int = 1024) -> None:
    """Encode mono float32 ``y`` into ``stream`` of ``container`` in frames of ``hop`` samples
    (planar float, pts in samples), then flush the encoder."""
    import av

    y = np.asarray(y, dtype=np.float32)
    for i in range(0, len(y), hop):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[None, i:i + hop]), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = sr, i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
