"""What every builder shares: audio cutting, skip records, parallel jobs, the final manifest."""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .. import __version__
from ..io.audio import peak_normalise
from ..io.atomic import write_text
from .dataset import INFO, MANIFEST, DatasetInfo, retire_manifest, write_manifest
from ..errors import UserError

PEAK = 0.95
BUILDING = ".build.json"  # parameters of the build writing into the folder, removed when it finishes


def check_seconds(seconds, fps: float) -> None:
    """A segment must hold a whole number (>= 1) of ``fps`` frames, else motion, pose and audio
    lengths would disagree (60-fps motion is subsampled to 30-fps keypoints)."""
    frames = seconds * fps
    if not (math.isfinite(frames) and frames >= 1 - 1e-9 and abs(frames - round(frames)) < 1e-6):
        raise UserError(f"--segment-seconds {seconds} must be a positive multiple of 1/{fps:g} s")


def cut_audio(y, sr: int, start_s: float, seconds: float):
    """``seconds`` of ``y`` from ``start_s``, zero-padded at the end if ``y`` is shorter,
    peak-normalised to 0.95 (the D2M-GAN test-time loader). Returns (clip, padded_samples)."""
    n = int(round(seconds * sr))
    a = int(round(start_s * sr))
    clip = np.asarray(y[a:a + n], dtype=np.float32)
    pad = n - len(clip)
    if pad > 0:
        clip = np.concatenate([clip, np.zeros(pad, np.float32)])
    return peak_normalise(clip, PEAK), max(0, pad)


def nonfinite(item: str, arrays: dict) -> dict | None:
    """The skip record of a segment whose arrays (name -> array) hold NaN or inf, else None."""
    bad = [name for name, a in arrays.items() if not np.isfinite(a).all()]
    if not bad:
        return None
    return {"item": item, "reason": f"non-finite values (NaN or inf) in {', '.join(bad)}"}


def uncovered(item: str, span, video, why: str) -> dict:
    """The skip record of a segment whose window ``span`` (start_s, end_s) the video does not cover."""
    return {"item": item, "reason": f"{video}: window {span[0]:.2f}-{span[1]:.2f} s not covered ({why})"}


def run_jobs(fn, jobs, *, workers: int, progress: bool, desc: str):
    """``fn`` over ``jobs`` (one per sequence/video), in order; forked workers when workers > 1."""
    from ..progress import progress_bar

    bar = dict(total=len(jobs), desc=desc, unit="video", disable=not progress)
    if workers <= 1 or len(jobs) < 2:
        return [fn(j) for j in progress_bar(jobs, **bar)]
    from ..parallel import usable_cores

    # never more processes than jobs or cores (-j 1000 on 12 videos started 1000 processes)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs), usable_cores()),
                             mp_context=mp.get_context("fork")) as pool:
        return list(progress_bar(pool.map(fn, jobs), **bar))


def start(out, name: str, options: dict, source: dict) -> int | None:
    """Call before any file is written. Returns ``stale_before``: None, or a file mtime (ns)
    below which segment files in ``out`` must be rewritten rather than resumed.

    The parameters of the files already in ``out`` are those of an unfinished build
    (``.build.json``) or else of the finished one (dataset.json). With other parameters than
    this build's, the manifest is retired (the folder stops claiming a complete build while
    its files are rewritten) and every file older than now is stale: a file of the right
    shape may still hold the old content (audio from the music wav vs the video, say). A
    rerun with the same parameters after a kill keeps that mark, so it resumes what the
    killed build wrote and still rewrites the rest.
    """
    out = Path(out)
    new = json.loads(json.dumps({"name": name, "options": options, "source": source}))
    unfinished = _record(out / BUILDING, None)
    if unfinished is not None:
        old, stale_before = {k: unfinished.get(k) for k in new}, unfinished.get("stale_before_ns")
    else:
        info = _record(out / INFO, "builder")
        old = {k: info.get(k) for k in new} if info is not None else None
        stale_before = None
        if old is None and (out / MANIFEST).exists():
            old = {}  # a manifest without a readable dataset.json: provenance unknown
    out.mkdir(parents=True, exist_ok=True)
    if old is not None and old != new:
        retire_manifest(out)
        # The mark's own mtime is the cutoff: the same clock that stamps the files written next.
        write_text(out / BUILDING, json.dumps(new) + "\n")
        stale_before = (out / BUILDING).stat().st_mtime_ns
    write_text(out / BUILDING, json.dumps({**new, "stale_before_ns": stale_before}, indent=1) + "\n")
    return stale_before


def _record(path: Path, key):
    """The JSON object in ``path`` (its ``key`` entry); None if absent, {} if unreadable."""
    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text())
        rec = rec[key] if key else rec
        return rec if isinstance(rec, dict) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def finish(out, results, info: DatasetInfo, *, strict: bool, options: dict, source: dict):
    """Collect per-job ``(segments, skips, stats)`` and write the manifest (last, atomically).

    A skip is ``{"item": name, "reason": ...}``; with ``strict`` the first one is an error.
    """
    segments, skips, stats = [], [], {}
    first = {}
    for segs, sk, st in results:
        skips += sk
        for seg in segs:
            # Ids name the files and key the manifest: a second segment of the same id (a repeated
            # line in a list or CSV) would make the dataset invalid, so it is skipped and listed.
            if seg.segment_id in first:
                skips.append({"item": seg.segment_id, "reason": f"duplicate segment id (also from "
                              f"{first[seg.segment_id]}); built once"})
                continue
            first[seg.segment_id] = seg.sequence or seg.split
            segments.append(seg)
        for k, v in st.items():
            stats[k] = stats.get(k, 0) + v
    if strict and skips:
        raise UserError(f"{skips[0]['item']}: {skips[0]['reason']} ({len(skips)} skip(s) in all; "
                        "drop --strict to build the rest)")
    if not segments:
        first = f"; first: {skips[0]['item']}: {skips[0]['reason']}" if skips else ""
        raise UserError(f"no segment could be built ({len(skips)} skipped{first})", source.get("root"))
    counts = {}
    for s in segments:
        counts[s.split] = counts.get(s.split, 0) + 1
    info.builder = {"name": info.name, "d2m_bench_version": __version__, "options": options,
                    "source": source, "segments": counts, "n_skipped": len(skips), "skipped": skips,
                    "stats": stats}
    write_manifest(out, sorted(segments, key=natural_key), info)
    (Path(out) / BUILDING).unlink(missing_ok=True)
    return segments, skips, stats


def natural_key(seg):
    """Order by split, then id with numbers compared as numbers (seg2 before seg10)."""
    return seg.split, [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", seg.segment_id)]
