"""The baseline contract and the runner that turns a built dataset split into scored-ready audio.

A baseline turns one segment of a built dataset (d2m_bench.dataset) into mono audio of exactly
the segment's length at the dataset's sample rate. ``run_baseline`` writes::

    OUT/<segment_id>.wav      mono PCM_16, dataset sample rate, same sample count as the gt clip
    OUT/midi/<segment_id>.mid the MIDI that was rendered (symbolic baselines only)
    OUT/provenance.json       what produced the audio (see ``run_baseline``)

so that ``d2m-bench eval --pred OUT --gt DATA/audio/<split>`` pairs every clip by id.
"""
from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from d2m_bench.dataset import Dataset, Segment
from d2m_bench.errors import UserError


@dataclass
class RunContext:
    dataset: Dataset
    split: str
    segments: list
    out: Path
    sr: int
    seed: int = 0
    upstream: Path | None = None
    soundfont: str | None = None
    options: dict = field(default_factory=dict)

    @property
    def midi_dir(self) -> Path:
        return self.out / "midi"

    def path(self, seg: Segment, column: str) -> Path:
        rel = getattr(seg, column)
        if not rel:
            raise UserError(f"segment {seg.segment_id} has no {column} in the manifest", self.dataset.root)
        return self.dataset.root / rel


class Baseline:
    """Subclasses set the class attributes and implement ``segment``."""

    name = ""
    version = "1"
    upstream = ""  # repository@commit it re-implements or adapts ("" for references)
    summary = ""
    kind = "reference"  # "reference", "reimplementation" or "adapter"
    renders_midi = False  # needs fluidsynth and a soundfont
    needs_upstream = False  # needs --upstream DIR with the files listed by ``upstream_files``
    columns: tuple = ()  # manifest columns every segment must have

    def upstream_files(self, segment_id: str) -> list[str]:
        """Files expected in --upstream DIR for one segment."""
        return []

    def prepare(self, ctx: RunContext) -> dict:
        """Run-level checks and state; returns provenance entries for the whole run."""
        return {}

    def segment(self, ctx: RunContext, seg: Segment, length: int) -> tuple[np.ndarray, dict]:
        raise NotImplementedError


def segment_length(ctx: RunContext, seg: Segment) -> int:
    """Samples of the segment's gt clip (its audio file), else its duration times the rate."""
    if seg.audio:
        path = ctx.dataset.root / seg.audio
        try:
            info = sf.info(str(path))
        except (RuntimeError, sf.LibsndfileError):
            info = None
        if info is not None and info.samplerate == ctx.sr:
            return int(info.frames)
    return int(round((seg.end_s - seg.start_s) * ctx.sr))


def check_inputs(baseline: Baseline, ctx: RunContext) -> None:
    """One error naming every missing input (manifest columns, upstream files)."""
    for col in baseline.columns:
        lacking = [s.segment_id for s in ctx.segments if not getattr(s, col)]
        if lacking:
            raise UserError(f"{baseline.name} needs {col} for every segment; {len(lacking)} lack it: "
                            f"{_listing(lacking)}", ctx.dataset.root)
        absent = [getattr(s, col) for s in ctx.segments if not (ctx.dataset.root / getattr(s, col)).is_file()]
        if absent:
            raise UserError(f"{len(absent)} {col} files listed in the manifest are missing: {_listing(absent)}",
                            ctx.dataset.root)
    if baseline.needs_upstream:
        if ctx.upstream is None:
            pattern = ", ".join(baseline.upstream_files("<segment_id>"))
            raise UserError(f"{baseline.name} renders upstream outputs: pass --upstream DIR holding "
                            f"{pattern} for each of the {len(ctx.segments)} segments of split '{ctx.split}'")
        if not ctx.upstream.is_dir():
            raise UserError("upstream directory does not exist", ctx.upstream)
        missing = [name for s in ctx.segments for name in baseline.upstream_files(s.segment_id)
                   if not (ctx.upstream / name).is_file()]
        if missing:
            raise UserError(f"{len(missing)} expected upstream files are missing: {_listing(missing)}", ctx.upstream)


def _listing(items, limit=8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError("output path exists and is not a folder", out)
    out.mkdir(parents=True, exist_ok=True)
    old = [p for p in out.iterdir() if p.suffix.lower() == ".wav" or p.name == "provenance.json"]
    if old and not force:
        raise UserError(f"output folder already holds {len(old)} earlier outputs; pass --force to replace them", out)
    for p in old:
        p.unlink()
    if (out / "midi").is_dir():
        for p in (out / "midi").glob("*.mid"):
            p.unlink()


def write_json_atomic(path: Path, doc: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
    os.replace(tmp, path)


def run_baseline(baseline: Baseline, data, out, *, split="test", seed=0, upstream=None, soundfont=None,
                 workers=1, force=False, progress=True, options=None) -> dict:
    """Write one wav per segment of ``split`` plus provenance.json; returns the provenance.

    Provenance: baseline name, version, kind, upstream (repository@commit), dataset (path, name,
    split, sample rate), seed, synthesizer (program version, soundfont path and SHA-256) where
    MIDI is rendered, run-level entries from ``prepare`` and one entry per segment (for example
    Dance2Music's interpolated frames, CMT's tempo and stretch factor).
    """
    from d2m_bench import __version__
    from d2m_bench.audio import write_audio

    dataset = data if isinstance(data, Dataset) else Dataset(data)
    segments = dataset.segments(split)
    out = Path(out)
    ctx = RunContext(dataset=dataset, split=split, segments=segments, out=out, sr=int(dataset.info.sample_rate),
                     seed=int(seed), upstream=None if upstream is None else Path(upstream), soundfont=soundfont,
                     options=dict(options or {}))
    synth = None
    if baseline.renders_midi:
        from d2m_bench.render import fluidsynth_path, synth_info

        if fluidsynth_path() is None:
            raise UserError(f"{baseline.name} renders MIDI and needs fluidsynth (Debian: apt-get install "
                            "fluidsynth fluid-soundfont-gm, or `make sysdeps`)")
        synth = synth_info(soundfont)
    check_inputs(baseline, ctx)
    run_info = baseline.prepare(ctx)
    prepare_out(out, force)

    def one(seg):
        length = segment_length(ctx, seg)
        y, info = baseline.segment(ctx, seg, length)
        y = np.asarray(y, dtype=np.float32)
        if y.shape != (length,):
            raise RuntimeError(f"{baseline.name} returned {y.shape} samples for {seg.segment_id}, expected {length}")
        if not np.isfinite(y).all():
            raise RuntimeError(f"{baseline.name} returned non-finite samples for {seg.segment_id}")
        write_audio(out / f"{seg.segment_id}.wav", np.clip(y, -1.0, 1.0), ctx.sr)
        return seg.segment_id, {"samples": length, **info}

    from tqdm import tqdm

    per_segment = {}
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        for sid, info in tqdm(pool.map(one, segments), total=len(segments), desc=baseline.name,
                              disable=not progress, unit="seg"):
            per_segment[sid] = info
    doc = {
        "baseline": baseline.name, "version": baseline.version, "kind": baseline.kind,
        "upstream": baseline.upstream, "summary": baseline.summary,
        "d2m_bench_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": {"path": str(dataset.root), "name": dataset.info.name, "split": split,
                    "sample_rate": ctx.sr, "segments": len(segments)},
        "seed": ctx.seed, "upstream_dir": None if ctx.upstream is None else str(ctx.upstream),
        "synth": synth, "options": ctx.options, "run": run_info, "segments": per_segment,
    }
    write_json_atomic(out / "provenance.json", doc)
    return doc
