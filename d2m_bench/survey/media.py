"""Stimulus media: a system's audio muxed with the dance video (mp4: H.264 + AAC), and
trapping clips whose audio itself asks for a score (espeak-ng speech, or a beep count)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..io.atomic import replacing
from ..errors import UserError

SCORE_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def video_duration(path) -> float:
    import av

    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            if s.duration is not None and s.time_base is not None:
                return float(s.duration * s.time_base)
            return (c.duration or 0) / 1_000_000
    except (av.error.FFmpegError, IndexError) as exc:
        raise UserError(f"unreadable video ({exc.__class__.__name__})", path) from None


def video_samples(path, sr: int) -> int | None:
    """The video's duration in samples at ``sr``; None when the container gives no duration."""
    seconds = video_duration(path)
    return int(round(seconds * sr)) if seconds > 0 else None


def mux_video_audio(video_path, audio, sr: int, out_path, *, trim_to_video: bool = True) -> None:
    """Write ``out_path`` (mp4): the first video stream of ``video_path`` (copied when it is already
    H.264 yuv420p, else re-encoded to H.264) with ``audio`` (mono float) encoded as AAC.

    The video's own audio is dropped. The audio is cut to the video's length when longer
    (the rater judges music against this dance). The file appears atomically, moov first.
    """
    import av

    out_path = Path(out_path)
    y = np.asarray(audio, dtype=np.float32)
    if trim_to_video and (n := video_samples(video_path, sr)) is not None:
        y = y[:n]
    try:
        with replacing(out_path) as tmp, av.open(str(video_path)) as src, \
                av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
            vin = src.streams.video[0]
            ctx = vin.codec_context
            copy = ctx.name == "h264" and ctx.format is not None and ctx.format.name in ("yuv420p", "yuvj420p")
            if copy:
                vout = dst.add_stream_from_template(vin)
            else:
                vout = dst.add_stream("libx264", rate=vin.average_rate or Fraction(30))
                vout.width, vout.height, vout.pix_fmt = ctx.width // 2 * 2, ctx.height // 2 * 2, "yuv420p"
                vout.options = {"preset": "veryfast", "crf": "20"}
            aout = dst.add_stream("aac", rate=sr)
            aout.layout = "mono"
            aout.bit_rate = 192_000
            if copy:
                for packet in src.demux(vin):
                    if packet.dts is None:
                        continue
                    packet.stream = vout
                    dst.mux(packet)
            else:
                for frame in src.decode(vin):
                    frame = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
                    frame.pts = None
                    for packet in vout.encode(frame):
                        dst.mux(packet)
                for packet in vout.encode():
                    dst.mux(packet)
            from ..io.encode import encode_mono

            encode_mono(dst, aout, y, sr, hop=1024)
    except av.error.FFmpegError as exc:
        raise UserError(f"cannot mux with this video ({exc.__class__.__name__}: {exc})", video_path) from None


def write_wav(path, y, sr: int) -> None:
    from ..io.audio import write_audio

    with replacing(path) as tmp:
        write_audio(tmp, y, sr)


def espeak_available() -> str | None:
    return shutil.which("espeak-ng") or shutil.which("espeak")


def spoken_instruction(score: int, *, sr: int, label: str) -> np.ndarray:
    """espeak-ng saying which score to give, resampled to ``sr``, peak 0.5."""
    from ..io.audio import load_audio

    text = f"Attention check. Please rate this clip {SCORE_WORDS[score]}: {label}."
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "tts.wav"
        try:
            subprocess.run([espeak_available(), "-s", "150", "-w", str(wav), text], check=True,
                           capture_output=True, timeout=60)
        except (subprocess.SubprocessError, OSError) as exc:
            raise UserError(f"espeak-ng failed ({exc})") from None
        y, _ = load_audio(wav, sr=sr)
    return (0.5 * y / max(1e-9, float(np.abs(y).max()))).astype(np.float32)


def beep_code(score: int, *, sr: int) -> np.ndarray:
    """``score`` 1-kHz beeps (0.25 s on, 0.35 s off) after 0.5 s of silence, peak 0.5."""
    t = np.arange(int(0.25 * sr)) / sr
    beep = 0.5 * np.sin(2 * np.pi * 1000.0 * t) * np.hanning(len(t))
    gap = np.zeros(int(0.35 * sr))
    parts = [np.zeros(int(0.5 * sr))]
    for _ in range(score):
        parts += [beep, gap]
    return np.concatenate(parts).astype(np.float32)


def trap_audio(score: int, *, lead_in, sr: int, method: str, label: str) -> np.ndarray:
    """A trapping clip (ITU-T P.808): the start of an ordinary music stimulus, then the instruction."""
    instruction = spoken_instruction(score, sr=sr, label=label) if method == "espeak-ng" else beep_code(score, sr=sr)
    lead = np.asarray(lead_in, dtype=np.float32)[: int(1.0 * sr)]
    fade = np.linspace(1.0, 0.0, min(len(lead), int(0.2 * sr)), dtype=np.float32)
    lead = lead.copy()
    if len(fade):
        lead[-len(fade):] *= fade
    return np.concatenate([lead, np.zeros(int(0.3 * sr), np.float32), instruction])
