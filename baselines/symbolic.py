"""The three symbolic (MIDI) systems of the D2M-GAN comparison, rendered by d2m_bench.synth.render.

- dance2music: the in-tree re-implementation (baselines.dance2music) run on the dataset's 2-D
  keypoints;
- cmt: renders CMT (wzk1015/video-bgm-generation) MIDI, which is written at 120 qpm, after the
  time stretch by 120 / tempo that its own ``midi2mp3.py`` applies; expects per segment
  ``<id>.mid`` and ``<id>.json`` (CMT's metadata.json for that clip: at least ``tempo``;
  optional ``offset_s``, where the segment starts in the rendered music, default 0);
- foley-music: renders Foley Music (chuangg/Foley-Music) MIDI; expects ``<id>.mid``.

The adapters read every upstream file in ``prepare`` (metadata checked, every MIDI parsed), so a
bad file stops the run before anything is written.
"""
from __future__ import annotations

import json
import math

import numpy as np

from d2m_bench.data.dataset import Segment
from d2m_bench.errors import UserError
from d2m_bench.synth.render import fit_length, render_midi, stretch_midi, write_notes_midi

from . import dance2music as d2m
from .base import Baseline, RunContext

CMT_QPM = 120.0


class Dance2Music(Baseline):
    name = "dance2music"
    kind = "reimplementation"
    upstream = d2m.UPSTREAM
    summary = "Search-based Dance2Music: pose self-similarity, pentatonic beam search (width 50), piano."
    renders_midi = True
    columns = ("keypoints",)

    def __init__(self, *, layout: str = "coco17", fps: float = d2m.FPS, beam_width: int = d2m.BEAM_WIDTH):
        self._layout, self._fps, self._beam = layout, float(fps), int(beam_width)

    def prepare(self, ctx: RunContext) -> dict:
        info = ctx.dataset.info
        layout = info.keypoints_format or "coco17"
        if layout not in ("coco17", "body25"):
            raise UserError(f"dance2music knows keypoints_format coco17 or body25, not '{layout}'", ctx.dataset.root)
        self._layout = layout
        self._fps = float(info.keypoints_fps or d2m.FPS)
        self._beam = int(ctx.options.get("beam_width", self._beam))
        dims = {"coco17": 34, "body25": 36}[layout]
        layout_note = {"coco17": "COCO-17 keypoints (17 (x, y) = 34-d) instead of OpenPose BODY_25 "
                                 "(36-d after upstream's drop): AIST++ ships COCO-17",
                       "body25": "BODY_25 without MidHip and the 6 foot points (36-d), upstream's default"}[layout]
        return {"keypoints_format": layout, "keypoints_fps": self._fps, "feature_dims": dims,
                "frames_per_note": d2m.NOTE_FRAMES, "fps": d2m.FPS, "history": d2m.HISTORY,
                "beam_width": self._beam, "pitches": list(d2m.PITCHES), "start_state": d2m.START_STATE,
                "qpm": d2m.qpm(), "start_offset_s": d2m.START_OFFSET, "velocity": d2m.VELOCITY,
                "program": d2m.PROGRAM,
                "deviations": ["no 360-frame cap", "frames without a person interpolated, not dropped",
                               "keypoints normalised per frame (bounding box -> [-1, 1])", layout_note,
                               "equal rewards ranked by an explicit rule (" + d2m.TIE_RULE + ")"]}

    def compose(self, keypoints):
        """Keypoints (T, J, 3) at the dataset's rate -> (notes, search result, interpolated frames)."""
        feats, n_interp = d2m.pose_features(keypoints, layout=self._layout)
        feats = d2m.resample_frames(feats, self._fps, d2m.FPS)
        result = d2m.beam_search(d2m.dance_matrix(feats), beam_width=self._beam)
        return d2m.melody_notes(result.states), result, n_interp

    def segment(self, ctx: RunContext, seg: Segment, length: int):
        kp = np.load(ctx.path(seg, "keypoints"))
        notes, result, n_interp = self.compose(kp)
        # keypoint_* count frames at the dataset's keypoints_fps; frames_30fps after resampling to
        # the 30 fps the search runs at (one note per 6 of those).
        info = {"keypoint_frames": int(len(kp)), "keypoint_frames_interpolated": n_interp,
                "keypoint_frames_dropped": 0, "frames_30fps": result.n_frames,
                "notes": len(result.states), "reward": round(result.reward, 6),
                "correlation": round(result.correlation, 6),
                "pitches": [d2m.PITCHES[s] for s in result.states]}
        if not notes:
            return np.zeros(length, np.float32), {**info, "midi": None}
        midi = ctx.midi_dir / f"{seg.segment_id}.mid"
        write_notes_midi(midi, notes, program=d2m.PROGRAM, qpm=d2m.qpm())
        y = render_midi(midi, sr=ctx.sr, length=length, soundfont=ctx.soundfont)
        return y, {**info, "midi": f"midi/{midi.name}"}


def parse_midi(path):
    """Parse ``path`` as MIDI (one-line error naming it when that fails); returns the PrettyMIDI."""
    import pretty_midi

    try:
        return pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # pretty_midi raises bare Exceptions, mido OSError/EOFError/KeyError
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(f"unreadable MIDI ({exc.__class__.__name__}: {first})", path) from None


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def read_cmt_metadata(path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"unreadable CMT metadata ({exc})", path) from None
    tempo = meta.get("tempo") if isinstance(meta, dict) else None
    if not _number(tempo) or not tempo > 0:
        raise UserError("CMT metadata needs a positive number 'tempo' (visual tempo, bpm)", path)
    offset = meta.get("offset_s", 0.0)
    if not _number(offset) or offset < 0:
        raise UserError("'offset_s' must be a non-negative number of seconds", path)
    return {"tempo": float(tempo), "offset_s": float(offset)}


class CMT(Baseline):
    name = "cmt"
    kind = "adapter"
    upstream = "wzk1015/video-bgm-generation@78eb9a5"
    summary = "Renders CMT MIDI (written at 120 qpm) stretched by 120/tempo, as CMT's midi2mp3.py does."
    renders_midi = True
    needs_upstream = True

    def upstream_files(self, segment_id: str) -> list[str]:
        return [f"{segment_id}.mid", f"{segment_id}.json"]

    def prepare(self, ctx: RunContext) -> dict:
        self._meta = {s.segment_id: read_cmt_metadata(ctx.upstream / f"{s.segment_id}.json") for s in ctx.segments}
        for s in ctx.segments:
            parse_midi(ctx.upstream / f"{s.segment_id}.mid")
        return {"written_qpm": CMT_QPM, "stretch": "120 / tempo (tempo from <id>.json)"}

    def segment(self, ctx: RunContext, seg: Segment, length: int):
        meta = self._meta[seg.segment_id]
        factor = CMT_QPM / meta["tempo"]
        midi = ctx.midi_dir / f"{seg.segment_id}.mid"
        end = stretch_midi(ctx.upstream / f"{seg.segment_id}.mid", midi, factor)
        skip = int(round(meta["offset_s"] * ctx.sr))
        y = render_midi(midi, sr=ctx.sr, length=skip + length, soundfont=ctx.soundfont)
        return fit_length(y[skip:], length), {"tempo": meta["tempo"], "stretch": factor, "offset_s": meta["offset_s"],
                                              "music_seconds": round(end, 4), "midi": f"midi/{midi.name}"}


class FoleyMusic(Baseline):
    name = "foley-music"
    kind = "adapter"
    upstream = "chuangg/Foley-Music@dcc2638"
    summary = "Renders Foley Music MIDI as written."
    renders_midi = True
    needs_upstream = True

    def upstream_files(self, segment_id: str) -> list[str]:
        return [f"{segment_id}.mid"]

    def prepare(self, ctx: RunContext) -> dict:
        for s in ctx.segments:
            parse_midi(ctx.upstream / f"{s.segment_id}.mid")
        return {}

    def segment(self, ctx: RunContext, seg: Segment, length: int):
        import shutil

        midi = ctx.midi_dir / f"{seg.segment_id}.mid"
        midi.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ctx.upstream / f"{seg.segment_id}.mid", midi)
        y = render_midi(midi, sr=ctx.sr, length=length, soundfont=ctx.soundfont)
        return y, {"midi": f"midi/{midi.name}"}
