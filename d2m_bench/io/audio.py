"""Audio input and output.

`load_audio` returns the samples ``librosa.load(path, sr=sr, mono=True)`` returns, bit for
bit, so the faithful metric variants see what the published scripts saw:

* files libsndfile reads (wav, flac, ogg, aiff, mp3 with libsndfile >= 1.1): libsndfile's
  float32 samples, as librosa reads them;
* everything else (mp4, m4a, mov, webm, mkv, aac): librosa falls back to audioread, which runs
  ``ffmpeg -i FILE -f s16le -``; here libavcodec (PyAV) decodes with the same sample range
  and 16-bit conversion (see `_read_pyav`);
* then the channel mean (librosa.to_mono) and resampling with the protocol's resampler.

docs/eval.md states the rules and their tests.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .cache import file_digest
from ..errors import AudioError

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".webm", ".mkv", ".m4a", ".aac"}
MEDIA_EXTENSIONS = AUDIO_EXTENSIONS | VIDEO_EXTENSIONS
MIX_MODES = ("mean", "first")  # protocol audio.mono: channel mean (librosa.to_mono) or first channel


@dataclass(frozen=True)
class AudioInfo:
    """What the file held before loading changed it, recorded per clip in results."""

    native_sr: int
    channels: int
    native_samples: int  # frames in the file, before resampling
    resampled: bool
    mixed: bool  # several channels reduced to one
    # The file's SHA-256, recorded so that `report` copies only the very file that was scored.
    sha256: str | None = None

    def as_row(self, prefix: str) -> dict:
        row = {f"{prefix}_native_sr": self.native_sr, f"{prefix}_channels": self.channels,
               f"{prefix}_native_samples": self.native_samples, f"{prefix}_resampled": self.resampled,
               f"{prefix}_mixed": self.mixed}
        if self.sha256 is not None:
            row[f"{prefix}_sha256"] = self.sha256
        return row


# audio.max_seconds of a protocol: optional, so that protocols without it keep their hash.
DEFAULT_MAX_SECONDS = 600.0


def declared_seconds(path) -> float | None:
    """The duration a file's header or container declares, read without decoding any audio
    (libsndfile's frame count, else the container's or the longest audio stream's duration);
    None when nothing is declared."""
    try:
        # libmpg123 prints notes on fd 2 for damaged mp3s, as in _read_soundfile
        quiet = _quiet_stderr() if Path(path).suffix.lower() == ".mp3" else contextlib.nullcontext()
        with quiet:
            info = sf.info(str(path))
        if info.samplerate > 0 and info.frames >= 0:
            return info.frames / info.samplerate
    except (RuntimeError, sf.LibsndfileError, OSError, ValueError):
        pass
    try:
        import av

        with av.open(str(path)) as container:
            seconds = [float(s.duration * s.time_base) for s in container.streams.audio
                       if s.duration is not None and s.time_base is not None]
            if container.duration is not None:
                seconds.append(container.duration / 1_000_000)
            return max(seconds) if seconds else None
    except Exception:  # noqa: BLE001 - PyAV raises many kinds for a file it cannot open; decoding says why
        return None


def check_duration(path, max_seconds=None) -> None:
    """AudioError (one line) for a file declaring more than ``max_seconds`` (default 10 min),
    before anything is decoded: a 2-hour wav took 5.7 GB to decode."""
    check_declared(path, declared_seconds(path), max_seconds)


def check_declared(path, seconds: float | None, max_seconds=None) -> None:
    """`check_duration` for a file whose declared length (``seconds``) is already known."""
    limit = DEFAULT_MAX_SECONDS if max_seconds is None else float(max_seconds)
    if seconds is not None and seconds > limit:
        raise AudioError(f"declares {seconds:.1f} s of audio, more than the protocol allows (audio.max_seconds = "
                         f"{limit:g} s); cut it or raise audio.max_seconds", path)


def admit_audio(path, audio: dict, source=None) -> str:
    """Check a file's declared length against the protocol's [audio] table; its SHA-256
    (``source``, a worker pass's FileSource of ``path``, hashes it once for every section)."""
    if source is None:
        check_duration(path, audio.get("max_seconds"))
        return media_digest(path)
    check_declared(path, source.declared_seconds(), audio.get("max_seconds"))
    return source.digest()


def _cannot_read(exc: OSError, path) -> AudioError:
    return AudioError(f"cannot read file ({exc.strerror or exc.__class__.__name__})", path)


def media_digest(path) -> str:
    """SHA-256 of an audio file's bytes, for cache keys. Hashing reads the file before any
    decoder does, so an unreadable file must fail here with the error `read_audio` gives."""
    try:
        return file_digest(path)
    except OSError as exc:  # permission denied, a directory, an I/O error: the user's file
        raise _cannot_read(exc, path) from None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 for the duration (libmpg123 prints "Note: ..." lines there
    on damaged mp3s, below Python's reach), restoring it even on error."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreter): nothing to silence
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _wav_missing_bytes(path: Path) -> int:
    """Bytes the WAV header's data chunk declares beyond the end of the file (0 if intact).

    libsndfile silently shortens a truncated WAV to what is there, so this is checked here.
    Streaming writers put 0 or 0xFFFFFFFF in the size field; those are not judged.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return 0
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            ident, length = chunk[:4], int.from_bytes(chunk[4:], "little")
            if ident == b"data":
                if length in (0, 0xFFFFFFFF) or head[:4] == b"RF64":
                    return 0
                return max(0, pos + 8 + length - size)
            pos += 8 + length + (length & 1)
    return 0


def _read_soundfile(path: Path):
    if path.suffix.lower() == ".wav" and (missing := _wav_missing_bytes(path)):
        raise AudioError(f"truncated file: {missing} bytes of audio data missing at the end", path)
    quiet = _quiet_stderr() if path.suffix.lower() == ".mp3" else contextlib.nullcontext()
    with quiet, sf.SoundFile(str(path)) as fh:
        declared = fh.frames
        y = fh.read(dtype="float32", always_2d=True)
        sr = fh.samplerate
    # A cut-off mp3 (or other compressed stream) keeps the full frame count in its header and
    # libsndfile returns what decodes: fewer samples than declared means the file is damaged.
    if 0 < declared < (1 << 62) and y.shape[0] < declared:
        raise AudioError(f"truncated file: {y.shape[0]} of the {declared} frames its header declares", path)
    return y.T, sr  # (channels, samples), as librosa holds it


# Containers whose demuxer (libavformat's "mov,mp4,m4a,3gp,3g2,mj2") declares exact durations:
# the edit list (in the movie's time scale) and the sample table say how many samples are real.
_EXACT_DURATION_FORMATS = ("mov", "mp4", "m4a")


def _end_pts(container, stream, packet_end):
    """Where the real samples end (stream time base) in an mp4/mov, else None: the earlier of
    the stream's declared duration (edit list) and the end of its last packet (sample table)."""
    if not any(name in container.format.name.split(",") for name in _EXACT_DURATION_FORMATS):
        return None  # ADTS .aac, mkv, webm: durations are estimates or absent; ffmpeg keeps every decoded sample
    ends = [e for e in (packet_end, (stream.start_time or 0) + stream.duration if stream.duration else None)
            if e is not None]
    return min(ends) if ends else None


def _read_pyav(path: Path):
    """Decode with libavcodec as ``ffmpeg -i FILE -f s16le -`` does, which is what
    ``librosa.load`` runs (through audioread) for every file libsndfile cannot open.

    * Samples: libavformat drops the encoder delay (mp4 edit list or iTunSMPB priming; LAME/Xing
      for mp3); in mp4/mov the output ends where the edit list or the last packet's duration
      ends, whichever is earlier, which removes AAC's trailing frame padding. The ffmpeg
      command line keeps exactly these samples (tested against its output).
    * Values: converted to interleaved signed 16-bit by libswresample (round to nearest,
      clipped), as the ffmpeg command writes them, then divided by 32768 as
      ``librosa.util.buf_to_float`` does; identical to librosa.load's float32 samples.
    """
    import av

    try:
        with av.open(str(path)) as container:
            streams = container.streams.audio
            if not streams:
                raise AudioError("no audio track", path)
            stream = streams[0]
            sr = stream.codec_context.sample_rate or stream.rate
            chunks, resampler, channels, first_pts, packet_end = [], None, 1, None, None
            for packet in container.demux(stream):
                if packet.pts is not None and packet.duration:
                    packet_end = max(packet_end or 0, packet.pts + packet.duration)
                for frame in packet.decode():
                    if resampler is None:
                        channels, first_pts = len(frame.layout.channels), frame.pts
                        resampler = av.AudioResampler(format="s16", layout=frame.layout, rate=frame.sample_rate)
                    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            if resampler is not None:
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
            end = _end_pts(container, stream, packet_end)
            keep = None
            if end is not None and first_pts is not None and stream.time_base is not None:
                keep = max(0, int(round((end - first_pts) * stream.time_base * sr)))
    except av.error.FFmpegError as exc:
        raise AudioError(f"unreadable media ({exc.__class__.__name__}: {exc.strerror or exc})", path) from None
    if not chunks:
        return np.zeros((1, 0), np.float32), sr
    pcm = np.concatenate(chunks)
    if keep is not None:
        pcm = pcm[: keep * channels]
    y = pcm.astype(np.float32) * (1.0 / 32768.0)  # librosa.util.buf_to_float, n_bytes=2
    return y.reshape(-1, channels).T, sr


def _decode(path: Path):
    if path.is_dir():
        raise AudioError("is a directory, not an audio file", path)
    if not path.is_file():
        raise AudioError("no such file", path)
    if path.stat().st_size == 0:
        raise AudioError("empty file (0 bytes)", path)
    ext = path.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return _read_pyav(path)
    try:
        return _read_soundfile(path)
    except sf.LibsndfileError as exc:
        if ext == ".mp3":
            with _quiet_stderr():
                return _read_pyav(path)
        raise AudioError(f"unreadable audio ({exc.error_string if hasattr(exc, 'error_string') else exc})", path) from None
    except RuntimeError as exc:
        raise AudioError(f"unreadable audio ({exc})", path) from None


def decode_audio(path):
    """``(samples (channels, frames) float32, native rate)`` of a media file, as `read_audio`
    decodes it before mixing and resampling: decode once, then `prepare_audio` as often as the
    sections need (eval's worker pass). Raises AudioError as `read_audio` does."""
    path = Path(path)
    try:
        y, native = _decode(path)
    except OSError as exc:  # permission denied, a directory, an I/O error
        raise _cannot_read(exc, path) from None
    if y.shape[-1] == 0:
        raise AudioError("zero-length audio", path)
    if not np.isfinite(y).all():
        raise AudioError("contains NaN or inf samples", path)
    return y, native


def prepare_audio(y, native: int, sr: int | None = 22050, *, mix: str | None = "mean", res_type: str = "soxr_hq"):
    """Mix and resample decoded samples (`decode_audio`) as `read_audio` does: ``(y, sr, AudioInfo)``."""
    if mix not in (None, *MIX_MODES):
        raise ValueError(f"unknown channel mix '{mix}' ({', '.join(MIX_MODES)})")
    channels, frames = y.shape
    if mix == "mean":
        y = np.mean(y, axis=0)  # librosa.to_mono: plain channel mean
    elif mix == "first":
        y = y[0]
    resampled = sr is not None and native != sr
    if resampled:
        import librosa

        y = librosa.resample(y, orig_sr=native, target_sr=sr, res_type=res_type)
    else:
        sr = native
    info = AudioInfo(int(native), int(channels), int(frames), bool(resampled), bool(mix and channels > 1))
    return np.ascontiguousarray(y, dtype=np.float32), int(sr), info


def read_audio(path, sr: int | None = 22050, *, mix: str | None = "mean", res_type: str = "soxr_hq"):
    """Load ``path`` as float32 at ``sr`` (None keeps the native rate).

    ``mix`` reduces channels to one: "mean" (librosa.to_mono) or "first"; None keeps them,
    as (channels, samples). Returns ``(y, sr, AudioInfo)``. Raises AudioError (naming the
    file) for unreadable, truncated, empty or non-finite audio.
    """
    if mix not in (None, *MIX_MODES):
        raise ValueError(f"unknown channel mix '{mix}' ({', '.join(MIX_MODES)})")
    y, native = decode_audio(path)
    return prepare_audio(y, native, sr, mix=mix, res_type=res_type)


def load_audio(path, sr: int | None = 22050, *, mono: bool = True, res_type: str = "soxr_hq"):
    """``(y, sr)`` as ``librosa.load(path, sr=sr, mono=mono)`` gives them; see `read_audio`."""
    y, sr, _ = read_audio(path, sr, mix="mean" if mono else None, res_type=res_type)
    return y, sr


def write_audio(path, y, sr: int, subtype: str = "PCM_16") -> None:
    """Write mono or (channels, samples) audio; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    y = np.asarray(y)
    sf.write(str(path), y.T if y.ndim == 2 else y, sr, subtype=subtype)


def peak_normalise_dbfs(y, dbfs: float = -1.0) -> np.ndarray:
    """pyloudnorm ``normalize.peak`` (what stable-audio-metrics applies before CLAP and PaSST):
    y * 10^(dbfs/20) / max|y|, gain and product in float64 as there; float64 out. A silent clip
    is returned unscaled (pyloudnorm would divide by zero)."""
    y = np.asarray(y, dtype=np.float64)
    m = float(np.max(np.abs(y))) if len(y) else 0.0
    return y if m == 0.0 else y * (np.power(10.0, dbfs / 20.0) / m)


def peak_normalise(y, peak: float = 0.95):
    """Scale so that max |y| == peak (silence is returned unchanged)."""
    m = float(np.max(np.abs(y))) if len(y) else 0.0
    return y if m == 0 else (y * (peak / m)).astype(np.float32)
