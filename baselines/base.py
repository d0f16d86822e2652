"""The baseline contract and the runner that turns a built dataset split into scored-ready audio.

A baseline turns one segment of a built dataset (d2m_bench.data.dataset) into mono audio of exactly
the segment's length at the evaluation protocol's sample rate (``audio.sample_rate``: the rate
``eval`` scores at). ``run_baseline`` writes::

    OUT/<segment_id>.wav      mono PCM_16 at the protocol's rate, as many samples as the gt clip
                              has at that rate
    OUT/midi/<segment_id>.mid the MIDI that was rendered (symbolic baselines only)
    OUT/provenance.json       what produced the audio (see ``run_baseline``)

so that ``d2m-bench eval --pred OUT --gt DATA/audio/<split>`` pairs every clip by id.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from d2m_bench.io.atomic import write_text
from d2m_bench.data.dataset import Dataset, Segment
from d2m_bench.errors import UserError
from d2m_bench.io.pairing import is_media


@dataclass
class RunContext:
    dataset: Dataset
    split: str
    segments: list
    out: Path
    sr: int  # the protocol's rate: every output is rendered or resampled to it
    seed: int = 0
    resample: str = "soxr_hq"  # the protocol's resampler, for gt-derived audio at another rate
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
    """Samples of the segment's gt clip at ``ctx.sr``, else its duration times the rate.

    A gt clip at another rate counts ceil(n sr / native) samples: the length librosa.resample
    (what ``eval`` loads the gt with) gives it, so prediction and gt pair sample for sample.
    """
    if seg.audio:
        path = ctx.dataset.root / seg.audio
        try:
            info = sf.info(str(path))
        except (RuntimeError, sf.LibsndfileError):
            info = None
        if info is not None:
            if info.samplerate == ctx.sr:
                return int(info.frames)
            return int(np.ceil(info.frames * ctx.sr / info.samplerate))
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


def check_out(out: Path, ctx: RunContext, force: bool) -> list[Path]:
    """The earlier outputs ``--force`` may replace; errors for an OUT that cannot be used.

    Only files this run would write (``<id>.wav`` and ``midi/<id>.mid`` for the split's ids,
    provenance.json) are ever replaced. Other audio in OUT is refused, not deleted: ``eval``
    would reject it as extra ids. OUT inside the dataset could overwrite or mix with its files.
    """
    if out.exists() and not out.is_dir():
        raise UserError("output path exists and is not a folder", out)
    root = ctx.dataset.root.resolve()
    if out.resolve().is_relative_to(root):
        raise UserError(f"output folder is inside the dataset {root}; choose a folder outside it", out)
    ids = {s.segment_id for s in ctx.segments}
    from d2m_bench.io.outputs import check_output_folder

    # --force deletes <id>.wav, midi/<id>.mid and provenance.json: never an input (--upstream
    # given as OUT/midi, a soundfont named provenance.json, links into the dataset).
    check_output_folder("--out", out, {"--data": ctx.dataset.root, "--upstream": ctx.upstream,
                                       "--soundfont": ctx.soundfont},
                        claims=[f"{i}.wav" for i in sorted(ids)] + ["midi", "provenance.json"])
    if not out.is_dir():
        return []
    # Exactly the files eval would pair: anything else in OUT cannot become an extra id.
    foreign = sorted(p.name for p in out.iterdir() if is_media(p) and not (p.suffix == ".wav" and p.stem in ids))
    if foreign:
        raise UserError(f"output folder holds {len(foreign)} audio files that are not segments of split "
                        f"'{ctx.split}' ({_listing(foreign)}); eval would reject them as extra ids: "
                        "move them or choose another --out", out)
    old = [out / f"{i}.wav" for i in sorted(ids)] + [out / "midi" / f"{i}.mid" for i in sorted(ids)]
    old = [p for p in old + [out / "provenance.json"] if p.is_file()]
    if old and not force:
        raise UserError(f"output folder already holds {len(old)} earlier outputs; pass --force to replace them", out)
    return old


def write_json_atomic(path: Path, doc: dict) -> None:
    write_text(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def run_baseline(baseline: Baseline, data, out, *, split="test", protocol="d2m-aistpp-2s", seed=0, upstream=None,
                 soundfont=None, workers=1, force=False, progress=True, options=None) -> dict:
    """Write one wav per segment of ``split`` plus provenance.json; returns the provenance.

    Audio is written at ``protocol``'s ``audio.sample_rate`` (name, path or Protocol). When the
    dataset is stored at another rate, gt-derived audio (ground-truth, shuffled-gt) is resampled
    with the protocol's ``audio.resample``, exactly as ``eval`` resamples the gt it scores against.

    Provenance: baseline name, version, kind, upstream (repository@commit), dataset (absolute
    path, name, split, its sample rate), protocol (name, hash, output sample rate), seed,
    synthesizer (program version, soundfont path, SHA-256, whether it is the pinned one) where
    MIDI is rendered, run-level entries from ``prepare`` and one entry per segment (for example
    Dance2Music's frame counts, CMT's tempo and stretch factor).
    """
    from d2m_bench import __version__
    from d2m_bench.io.audio import write_audio
    from d2m_bench.protocol import load_protocol

    # The protocol eval will score with: a rate or resampler eval would refuse fails here, first.
    proto = load_protocol(protocol).validate_eval()
    dataset = data if isinstance(data, Dataset) else Dataset(data)
    segments = dataset.segments(split)
    out = Path(out)
    ctx = RunContext(dataset=dataset, split=split, segments=segments, out=out, sr=proto.get("audio.sample_rate"),
                     seed=int(seed), resample=proto.get("audio.resample"),
                     upstream=None if upstream is None else Path(upstream), soundfont=soundfont,
                     options=dict(options or {}))
    synth = None
    if baseline.renders_midi:
        from d2m_bench.synth.render import fluidsynth_path, synth_info

        if fluidsynth_path() is None:
            raise UserError(f"{baseline.name} renders MIDI and needs fluidsynth (Debian: apt-get install "
                            "fluidsynth fluid-soundfont-gm, or `make sysdeps`)")
        synth = synth_info(soundfont)
    check_inputs(baseline, ctx)
    old = check_out(out, ctx, force)
    run_info = baseline.prepare(ctx)
    # Every input has been checked: only now is anything deleted or written.
    for p in old:
        p.unlink()
    out.mkdir(parents=True, exist_ok=True)

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

    from d2m_bench.progress import progress_bar

    per_segment = {}
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        for sid, info in progress_bar(pool.map(one, segments), total=len(segments), desc=baseline.name,
                                      disable=not progress, unit="seg"):
            per_segment[sid] = info
    doc = {
        "baseline": baseline.name, "version": baseline.version, "kind": baseline.kind,
        "upstream": baseline.upstream, "summary": baseline.summary,
        "d2m_bench_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": {"path": str(dataset.root.resolve()), "name": dataset.info.name, "split": split,
                    "sample_rate": int(dataset.info.sample_rate), "segments": len(segments)},
        "protocol": {"name": proto.name, "hash": proto.hash, "source": proto.source},
        "sample_rate": ctx.sr,
        "seed": ctx.seed, "upstream_dir": None if ctx.upstream is None else str(ctx.upstream),
        "synth": synth, "options": ctx.options, "run": run_info, "segments": per_segment,
    }
    write_json_atomic(out / "provenance.json", doc)
    return doc
