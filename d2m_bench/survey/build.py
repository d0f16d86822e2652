"""`survey build`: stimuli, rater assignment, hidden references, trapping clips, web page.

Layout of a survey folder::

    survey.json      everything: aspects, scale, systems, stimuli (opaque ids), raters + tokens
    stimuli/         c0001.mp4 (coherence: system audio + dance video), q0002.wav (quality);
                     trapping clips are numbered in the same shuffled sequence, so a file name
                     reveals neither the system, the segment nor whether it is a check
    static/          index.html, app.js, style.css (self-contained, no CDN)
    ratings.sqlite   written by `survey serve`

Items are matched by file stem (= segment id) between the video folder and every system
folder; segments missing anywhere are left out and listed in survey.json.
"""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from ..progress import progress_bar

from .. import __version__
from ..io.audio import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, load_audio
from ..errors import UserError
from ..io.names import name_problem
from ..io.atomic import write_text
from . import media
from .assign import balance_report, balanced_assignment, insert_checks
from .lock import LOCK_NAME, SurveyLock

SCHEMA = 1
SCALE = {"min": 1, "max": 5, "labels": {"1": "Bad", "2": "Poor", "3": "Fair", "4": "Good", "5": "Excellent"}}
ASPECTS = {
    "coherence": {"media": "video", "title": "Music-dance coherence",
                  "question": "How well does the music go with the dance (rhythm, beats, style)?"},
    "quality": {"media": "audio", "title": "Music quality",
                "question": "How good is the overall quality of this music?"},
}
STATIC_FILES = ("index.html", "app.js", "style.css")
REPLACED_PREFIX = "ratings-replaced-"


def static_dir() -> Path:
    return Path(__file__).resolve().parent / "static"


def _files_by_stem(folder: Path, extensions, what: str) -> dict:
    if not folder.is_dir():
        raise UserError(f"{what} folder does not exist", folder)
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith("."):
            if p.stem in out:
                raise UserError(f"two {what} files for segment '{p.stem}': {out[p.stem].name} and {p.relative_to(folder)}", folder)
            out[p.stem] = p
    if not out:
        raise UserError(f"no {what} files ({', '.join(sorted(extensions))})", folder)
    return out


def parse_systems(specs) -> list:
    """``NAME=DIR`` strings to ``[(name, Path)]``; names unique plain names (d2m_bench.io.names)."""
    out, seen = [], set()
    for spec in specs:
        name, sep, folder = spec.partition("=")
        name = name.strip()
        if not sep or not name or not folder:
            raise UserError(f"--systems wants NAME=DIR, got '{spec}'")
        if name_problem(name) or name == "trap":
            raise UserError(f"system name '{name}' must be letters, digits, '_', '.', '+', '-' (not starting with "
                            "a dot, no '..', and not 'trap')")
        if name in seen:
            raise UserError(f"system '{name}' given twice")
        seen.add(name)
        out.append((name, Path(folder)))
    if not out:
        raise UserError("give at least one --systems NAME=DIR")
    return out


def build_survey(systems, videos, out, *, n_raters: int = 20, per_rater: int | None = None, seed: int = 0,
                 reference: str | None = None, traps_per_rater: int = 1, aspects=("coherence", "quality"),
                 trap_method: str = "auto", force: bool = False, progress: bool = True) -> dict:
    """Build a survey folder; returns the survey.json document.

    ``per_rater``: stimuli per rater per aspect (default: one per system x segment, capped at 20).
    ``reference``: the system shown as hidden reference (e.g. the ground truth); default "gt"
    when a system has that name. ``trap_method``: "espeak-ng", "beep" or "auto" (espeak-ng
    when installed).

    ``force`` replaces an existing survey, never its ratings: ``ratings.sqlite`` is moved aside
    to ``ratings-replaced-<UTC time>.sqlite`` (listed in the document's ``replaced_ratings``).
    Refused while the survey is served (see ``lock``).
    """
    held: list = []  # the folder's lock, taken once the inputs are checked and writing starts
    try:
        return _build_survey(systems, videos, out, n_raters=n_raters, per_rater=per_rater, seed=seed,
                             reference=reference, traps_per_rater=traps_per_rater, aspects=aspects,
                             trap_method=trap_method, force=force, progress=progress, held=held)
    finally:
        for lock in held:
            lock.release()


def _own_leftover(path: Path) -> bool:
    """Files a replaced survey leaves behind on purpose: the lock file and moved-aside ratings."""
    return path.name == LOCK_NAME or (path.name.startswith(REPLACED_PREFIX) and ".sqlite" in path.name)


def _check_replaceable(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError("survey folder is not a folder", out)
    if all(_own_leftover(p) for p in out.iterdir()):
        return
    if not force:
        raise UserError("survey folder exists and is not empty (use --force to replace it)", out)
    if not (out / "survey.json").is_file():
        raise UserError("refusing to replace a folder that is not a survey (no survey.json)", out)


def _clear_previous(out: Path) -> list:
    """Move the ratings aside (with their WAL, which may hold committed ratings), then remove what
    a build writes. Other files are left alone. Returns the moved-aside database names."""
    moved = []
    db = out / "ratings.sqlite"
    if db.exists():
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        n = 0
        while True:
            name = f"{REPLACED_PREFIX}{stamp}{'' if n == 0 else f'-{n}'}.sqlite"
            if not any((out / (name + s)).exists() for s in ("", "-wal", "-shm")):
                break
            n += 1
        _checkpoint(db)
        for suffix in ("", "-wal", "-shm"):
            src = out / f"ratings.sqlite{suffix}"
            if src.exists():
                os.replace(src, out / (name + suffix))
        moved.append(name)
    (out / "survey.json").unlink(missing_ok=True)  # first: the folder stops claiming to be a survey
    for sub in ("stimuli", "static"):
        if (out / sub).is_dir() and not (out / sub).is_symlink():
            shutil.rmtree(out / sub)
        elif (out / sub).exists() or (out / sub).is_symlink():
            (out / sub).unlink()
    return moved


def _checkpoint(db: Path) -> None:
    """Fold the WAL into the database file, so the moved-aside file holds every rating by itself
    (the WAL is moved along anyway: this is best effort, a corrupt file is moved as it is)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=rw", uri=True)
        try:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
    except sqlite3.Error:
        pass


def _build_survey(systems, videos, out, *, n_raters, per_rater, seed, reference, traps_per_rater, aspects,
                  trap_method, force, progress, held) -> dict:
    out = Path(out)
    systems = parse_systems(systems) if systems and isinstance(systems[0], str) else list(systems)
    for a in aspects:
        if a not in ASPECTS:
            raise UserError(f"unknown aspect '{a}' (known: {', '.join(ASPECTS)})")
    names = [n for n, _ in systems]
    if reference is None and "gt" in names:
        reference = "gt"
    if reference is not None and reference not in names:
        raise UserError(f"--reference '{reference}' is not one of the systems ({', '.join(names)})")
    if n_raters < 1:
        raise UserError("--raters must be at least 1")
    _check_replaceable(out, force)
    from ..io.outputs import check_output_folder

    # --force removes stimuli/ and static/: a system's or the video folder there would go with them.
    check_output_folder("--out", out, {f"--systems {n}": d for n, d in systems} | {"--videos": videos},
                        claims=("survey.json", "stimuli", "static", "ratings.sqlite"))
    if trap_method == "auto":
        trap_method = "espeak-ng" if media.espeak_available() else "beep"
    if trap_method == "espeak-ng" and not media.espeak_available():
        raise UserError("espeak-ng is not installed (apt-get install espeak-ng), use --trap-method beep")
    if trap_method not in ("espeak-ng", "beep"):
        raise UserError(f"unknown trap method '{trap_method}' (espeak-ng, beep, auto)")

    video_files = _files_by_stem(Path(videos), VIDEO_EXTENSIONS, "video") if "coherence" in aspects else {}
    audio_files = {n: _files_by_stem(d, AUDIO_EXTENSIONS | {".m4a"}, f"audio of system {n}") for n, d in systems}
    stems = set.intersection(*(set(f) for f in audio_files.values()))
    if video_files:
        stems &= set(video_files)
    items = sorted(stems)
    every = set(video_files).union(*(set(f) for f in audio_files.values()))
    if not items:
        raise UserError("no segment id is present in the video folder and in every system folder")
    if per_rater is None:
        per_rater = min(len(names) * len(items), 20)
    if per_rater > len(names) * len(items):
        raise UserError(f"--items-per-rater {per_rater} exceeds the {len(names) * len(items)} system x segment stimuli")

    rng = np.random.default_rng(seed)
    plan = {a: balanced_assignment(names, items, n_raters=n_raters, per_rater=per_rater, rng=rng) for a in aspects}
    used = sorted({(a, s, i) for a in aspects for seq in plan[a] for s, i in seq})
    # Trap scores: each rater gets distinct scores per aspect, drawn at random.
    trap_plan = {a: [list(rng.choice(np.arange(1, 6), size=min(traps_per_rater, 5), replace=False))
                     for _ in range(n_raters)] for a in aspects}
    trap_needed = sorted({(a, int(v)) for a in aspects for lst in trap_plan[a] for v in lst})
    # One shuffled numbering for system stimuli and trapping clips alike, one fixed width: the id
    # (and so the URL and file name the page sees) tells neither system, segment nor check status.
    numbered = [("stimulus", *u) for u in used] + [("trap", *t) for t in trap_needed]
    width = max(4, len(str(len(numbered))))
    ids = {}
    for n, idx in enumerate(rng.permutation(len(numbered)), start=1):
        ids[numbered[idx]] = f"{numbered[idx][1][0]}{n:0{width}d}"
    stim_ids = {u: ids[("stimulus", *u)] for u in used}
    stimuli = {}
    out.mkdir(parents=True, exist_ok=True)
    held.append(SurveyLock(out, purpose="survey build"))
    _check_replaceable(out, force)  # again, under the lock: a server may have started meanwhile
    moved = _clear_previous(out)
    (out / "stimuli").mkdir()
    jobs = len(used) + len(trap_needed)
    bar = progress_bar(total=jobs, desc="stimuli", unit="file", disable=not progress)
    audio_cache: dict = {}

    def audio_of(system, item):
        key = (system, item)
        if key not in audio_cache:
            audio_cache.clear()  # one clip at a time: both aspects use it back to back
            audio_cache[key] = load_audio(audio_files[system][item], sr=None)
        return audio_cache[key]

    for a, s, i in sorted(used, key=lambda t: (t[1], t[2], t[0])):
        sid = stim_ids[(a, s, i)]
        y, sr = audio_of(s, i)
        if ASPECTS[a]["media"] == "video":
            rel = f"stimuli/{sid}.mp4"
            media.mux_video_audio(video_files[i], y, sr, out / rel)
        else:
            rel = f"stimuli/{sid}.wav"
            media.write_wav(out / rel, y, sr)
        stimuli[sid] = {"file": rel, "aspect": a, "system": s, "item": i,
                        "kind": "reference" if s == reference else "normal", "expected_score": None}
        bar.update()
    trap_ids = {}
    for a, score in trap_needed:
        sid = ids[("trap", a, score)]
        src_item = items[int(rng.integers(len(items)))]
        src_sys = names[int(rng.integers(len(names)))]
        y, sr = audio_of(src_sys, src_item)
        # As long as the real stimulus it starts from (silence after the instruction), so the
        # duration or file size does not single it out, unless the instruction needs longer.
        length = len(y)
        if ASPECTS[a]["media"] == "video" and (n := media.video_samples(video_files[src_item], sr)) is not None:
            length = min(length, n)
        y = media.trap_audio(score, lead_in=y, sr=sr, method=trap_method, label=SCALE["labels"][str(score)])
        if len(y) < length:
            y = np.concatenate([y, np.zeros(length - len(y), dtype=y.dtype)])
        if ASPECTS[a]["media"] == "video":
            rel = f"stimuli/{sid}.mp4"
            media.mux_video_audio(video_files[src_item], y, sr, out / rel, trim_to_video=False)
        else:
            rel = f"stimuli/{sid}.wav"
            media.write_wav(out / rel, y, sr)
        stimuli[sid] = {"file": rel, "aspect": a, "system": "trap", "item": sid, "kind": "trap",
                        "expected_score": score, "trap_method": trap_method}
        trap_ids[(a, score)] = sid
        bar.update()
    bar.close()

    raters = {}
    for r in range(n_raters):
        sequence = []
        for a in aspects:
            seq = [stim_ids[(a, s, i)] for s, i in plan[a][r]]
            sequence += insert_checks(seq, [trap_ids[(a, int(v))] for v in trap_plan[a][r]], rng)
        raters[f"r{r + 1:03d}"] = {"token": secrets.token_urlsafe(12), "sequence": sequence}

    (out / "static").mkdir()
    for name in STATIC_FILES:
        shutil.copyfile(static_dir() / name, out / "static" / name)
    trap_text = ("Some clips are attention checks: a voice in the clip tells you which score to give. "
                 "Give exactly that score." if trap_method == "espeak-ng" else
                 "Some clips are attention checks: after a short piece of music you hear a number of beeps. "
                 "Give the score equal to the number of beeps (three beeps: score 3).")
    doc = {"schema": SCHEMA, "kind": "d2m-bench-survey", "toolkit": f"d2m-bench {__version__}",
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seed": seed,
           "scale": SCALE, "aspects": {a: ASPECTS[a] for a in aspects}, "aspect_order": list(aspects),
           "require_full_playback": True, "trap_method": trap_method, "traps_per_rater": traps_per_rater,
           "instructions": ("Use headphones in a quiet room. Each clip plays once in full before you can rate it; "
                            "you may replay it. Rate each clip on its own. " + trap_text),
           "systems": [{"name": n, "dir": str(d), "is_reference": n == reference} for n, d in systems],
           "reference": reference, "videos": str(videos) if video_files else None,
           "items": items, "items_left_out": sorted(every - set(items)),
           "items_per_rater": per_rater, "raters_planned": n_raters,
           "balance": {a: balance_report(plan[a], names, items) for a in aspects},
           "stimuli": stimuli, "raters": raters, "replaced_ratings": moved}
    write_text(out / "survey.json", json.dumps(doc, indent=1) + "\n")
    return doc


def load_survey(folder) -> dict:
    folder = Path(folder)
    path = folder / "survey.json"
    if not path.is_file():
        raise UserError("not a survey folder (no survey.json)", folder)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"unreadable survey.json ({exc})", path) from None
    if doc.get("kind") != "d2m-bench-survey":
        raise UserError("not a d2m-bench survey file", path)
    return doc
