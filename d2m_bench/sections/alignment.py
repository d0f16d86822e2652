"""The ``[alignment]`` section: beat alignment between the input dance and the music.

Music = the predicted audio; the ground-truth audio is scored the same way as a reference.
Motion = 3-D joints (frames, joints, 3) at the protocol's fps, from ``ctx.options["motion"]``
(a folder of ``<id>.npy``) or the ``joints3d`` column of the built dataset ``ctx.data``.
Parameters: the protocol's ``[alignment]`` table (see protocols/*.toml).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import Section, table_enabled

NAME = "alignment"
TEMPO_PRIORS = ("aistpp_music_id", "none")
AGGREGATES = ("mean", "median")
DEFAULTS = {"fps": 60.0, "hop_length": 512, "tempo_prior": "aistpp_music_id",
            "fact": {"order": 10, "sigma": 3.0, "tightness": 100.0, "percussive": False,
                     "aggregate": "mean", "use_tempo_prior": True},
            "bailando": {"smoothing_sigma": 5.0, "order": 1, "sigma": 3.0, "tightness": 100.0,
                         "percussive": True, "aggregate": "median", "use_tempo_prior": False}}


def enabled(protocol) -> bool:
    return table_enabled(protocol, NAME)


def validate(check, table) -> None:
    if not table:  # absent: the defaults, valid by construction (and no embedder module imported)
        return
    from ..protocol import MAX_SAMPLE_RATE

    flat = [k for k, v in DEFAULTS.items() if not isinstance(v, dict)]
    subs = [k for k, v in DEFAULTS.items() if isinstance(v, dict)]
    check.keys("alignment", table, ("enabled", "sample_rate", *flat, *subs))
    if "enabled" in table:
        check.boolean("alignment.enabled", table["enabled"])
    fps = table.get("fps", DEFAULTS["fps"])
    hop = table.get("hop_length", DEFAULTS["hop_length"])
    check.number("alignment.fps", fps, maximum=1000)
    check.number("alignment.hop_length", hop, integer=True, maximum=65536)
    if fps * hop > MAX_SAMPLE_RATE:
        check.fail(f"alignment.fps x hop_length = {fps * hop:g} Hz is above {MAX_SAMPLE_RATE} Hz")
    if "sample_rate" in table:
        check.number("alignment.sample_rate", table["sample_rate"], integer=True, maximum=MAX_SAMPLE_RATE)
    check.choice("alignment.tempo_prior", table.get("tempo_prior", DEFAULTS["tempo_prior"]), TEMPO_PRIORS)
    for name in subs:
        sub = check.table(f"alignment.{name}", required=False)
        check.keys(f"alignment.{name}", sub, tuple(DEFAULTS[name]))
        for key, value in sub.items():
            dotted = f"alignment.{name}.{key}"
            if key in ("percussive", "use_tempo_prior"):
                check.boolean(dotted, value)
            elif key == "aggregate":
                check.choice(dotted, value, AGGREGATES)
            elif key == "order":
                check.number(dotted, value, integer=True, maximum=10_000)
            elif key == "smoothing_sigma":
                check.number(dotted, value, strict=False, maximum=10_000)
            else:  # sigma, tightness
                check.number(dotted, value)


def _params(protocol) -> dict:
    table = protocol.section("alignment")
    p = {k: table.get(k, v) for k, v in DEFAULTS.items() if not isinstance(v, dict)}
    for name in ("fact", "bailando"):
        p[name] = {**DEFAULTS[name], **table.get(name, {})}
    p["sr"] = int(round(p["fps"] * p["hop_length"]))
    if "sample_rate" in table and int(table["sample_rate"]) != p["sr"]:
        raise UserError(f"alignment.sample_rate {table['sample_rate']} must equal fps x hop_length = {p['sr']}",
                        protocol.source)
    return p


def _motion_sources(ctx, fps):
    """id -> (path, fps) from the motion folder or the dataset's joints3d column."""
    folder = (ctx.options or {}).get("motion")
    if folder:
        folder = Path(folder)
        if not folder.is_dir():
            raise UserError("motion folder not found", folder)
        return {p.stem: (p, fps) for p in folder.glob("*.npy")}, f"folder {folder}"
    if ctx.data is not None:
        jfps = float(ctx.data.info.joints3d_fps or 0)
        return ({s.segment_id: (ctx.data.root / s.joints3d, jfps) for s in ctx.data.segments() if s.joints3d},
                f"dataset {ctx.data.root} (joints3d)")
    return {}, None


def _load_joints(path):
    try:
        j = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"unreadable joints .npy ({exc})", path) from None
    if j.ndim == 2 and j.shape[1] % 3 == 0:
        j = j.reshape(len(j), -1, 3)
    if j.ndim != 3 or j.shape[-1] != 3 or len(j) < 3 or not np.isfinite(j).all():
        raise UserError(f"joints must be finite (frames, joints, 3), got shape {j.shape}", path)
    return j


def _beats(path, p, variant, tempo, cache):
    from ..io.audio import load_audio
    from ..io.cache import file_digest
    from ..metrics import alignment as al

    cfg = p[variant]
    bpm = tempo if cfg["use_tempo_prior"] and p["tempo_prior"] == "aistpp_music_id" else None
    config = {"sr": p["sr"], "hop": p["hop_length"], "bpm": bpm, "tightness": cfg["tightness"],
              "percussive": cfg["percussive"], "aggregate": cfg["aggregate"],
              "decode": 2}  # 2: compressed audio without codec padding, 16-bit values (audio.py)
    key = cache.key(file_digest(path), config)
    hit = cache.get(key, ndim=1)
    if hit is not None and (hit >= 0).all() and (np.diff(hit) >= 0).all():
        return hit
    y, _ = load_audio(path, p["sr"])
    beats = al.music_beats(y, sr=p["sr"], hop_length=p["hop_length"], start_bpm=bpm, tightness=cfg["tightness"],
                           percussive=cfg["percussive"], aggregate=cfg["aggregate"])
    cache.put(key, beats)
    return beats


def check(protocol, ctx) -> None:
    _params(protocol)  # alignment.sample_rate must equal fps x hop_length


def score(rows, protocol, ctx) -> Section:
    """FACT BeatAlign and Bailando BAS of the predictions (and of the gt, as the reference)."""
    from ..data.segments import parse_aist_name
    from ..io.cache import FileCache
    from ..metrics import alignment as al
    from ..results.result import metric_summary

    pairs = ctx.pairs
    p = _params(protocol)
    sources, origin = _motion_sources(ctx, p["fps"])
    if not sources:
        why = ("no 3-D joints in the dataset (joints3d column empty)" if ctx.data is not None
               else "no motion given (eval --data DIR with joints3d, or --motion DIR of <id>.npy)")
        return {"status": "skipped", "reason": why}
    cache = FileCache("alignment-beats", enabled=ctx.cache)
    per_clip, excluded = {}, []
    cols = {"beat_align_fact": [], "beat_align_bailando": [], "beat_align_fact_gt": [], "beat_align_bailando_gt": []}
    from ..progress import progress_bar

    for pair in progress_bar(pairs, desc="alignment", unit="clip", disable=not ctx.progress, leave=False):
        if pair.id not in sources:
            excluded.append({"id": pair.id, "reason": "no motion for this id"})
            continue
        path, fps = sources[pair.id]
        if abs(fps - p["fps"]) > 1e-6:
            excluded.append({"id": pair.id, "reason": f"motion at {fps:g} fps, protocol wants {p['fps']:g}"})
            continue
        joints = _load_joints(path)
        name = parse_aist_name(pair.id)
        tempo = name.tempo_bpm if name else None
        kb_fact = al.kinematic_beats_fact(joints, order=int(p["fact"]["order"]))
        kb_bail, length = al.kinematic_beats_bailando(joints, sigma=float(p["bailando"]["smoothing_sigma"]),
                                                      order=int(p["bailando"]["order"]))
        row = {"kinematic_beats_fact": len(kb_fact), "kinematic_beats_bailando": len(kb_bail),
               "kinematic_beat_frames_fact": kb_fact.astype(int).tolist()}
        for audio, suffix in ((pair.pred, ""), (pair.gt, "_gt")):
            mb_f = _beats(audio, p, "fact", tempo, cache)
            mb_b = _beats(audio, p, "bailando", tempo, cache)
            mb_f = mb_f[mb_f < len(joints)]  # mint: audio_feature[:T], music cut to the motion length
            row[f"beat_align_fact{suffix}"] = al.beat_align_fact(kb_fact, mb_f, sigma=float(p["fact"]["sigma"]))
            bas = al.beat_align_bailando(kb_bail, mb_b, sigma=float(p["bailando"]["sigma"]), length=length)
            row[f"beat_align_bailando{suffix}"] = None if math.isnan(bas) else bas
            row[f"music_beats{suffix}"] = len(mb_f)
            row[f"music_beat_frames{suffix}"] = np.asarray(mb_f).astype(int).tolist()  # for the report's figure
        for c in cols:
            if row[c] is not None:
                cols[c].append(row[c])
        if row["beat_align_bailando"] is None:
            excluded.append({"id": pair.id, "reason": "no music beat in the prediction (beat_align_bailando undefined)"})
        per_clip[pair.id] = row
    if not per_clip:
        return {"status": "skipped", "reason": f"no clip has motion ({len(excluded)} without; source: {origin})",
                "excluded": excluded}
    definitions = {
        "beat_align_fact": "FACT BeatAlign: mean over kinematic beats of exp(-d^2/(2*sigma^2)), pred music",
        "beat_align_bailando": "Bailando BAS: mean over music beats of exp(-d^2/(2*sigma^2)), pred music",
        "beat_align_fact_gt": "FACT BeatAlign of the ground-truth music (reference, not a system score)",
        "beat_align_bailando_gt": "Bailando BAS of the ground-truth music (reference, not a system score)"}
    aggregate = {k: metric_summary(v, definition=definitions[k]) for k, v in cols.items() if v}
    meta = {"motion_source": origin, "fps": p["fps"], "sr": p["sr"], "hop_length": p["hop_length"],
            "tempo_prior": p["tempo_prior"], "fact": p["fact"], "bailando": p["bailando"], "n_clips": len(per_clip)}
    return {"status": "ok", "meta": meta, "aggregate": aggregate, "per_clip": per_clip, "excluded": excluded}
