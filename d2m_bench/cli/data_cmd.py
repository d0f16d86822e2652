"""`d2m-bench data`: build, synthesise and inspect datasets."""
from __future__ import annotations

import json

import click

from .grammar import out_dir, workers

_VISUAL = click.option("--visual", default="flow-stats", show_default=True,
                       help="Visual extractor: flow-stats (CPU optical flow, 64-d), precomputed (--visual-dir of <id>.npy), none.")
_VISUAL_DIR = click.option("--visual-dir", type=click.Path(file_okay=False), default=None,
                           help="Folder of <segment id>.npy vectors for --visual precomputed.")
_SECONDS = click.option("--segment-seconds", type=click.FloatRange(min=0, min_open=True), default=2.0,
                        show_default=True, help="Segment length (a multiple of 1/30 s).")
_COMMON = [
    out_dir("Output dataset folder."),
    click.option("--strict", is_flag=True, help="Fail on the first skipped item instead of building the rest."),
    workers("Parallel worker processes"),
    click.option("--limit", type=int, default=None, help="Only the first N sequences/videos per split (smoke runs)."),
    click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
]


def _common(f):
    for opt in reversed(_COMMON):
        f = opt(f)
    return f


# What a build writes or replaces in --out: the dataset layout (see dataset.py) and its records.
_DATASET_NAMES = ("audio", "motion", "keypoints", "joints3d", "visual", "dataset.json", "manifest.csv",
                  ".manifest.previous.csv", ".build.json")


def _check_out(out, **inputs):
    """--out must not be an input folder nor hold an input where the dataset's files go."""
    from ..io.outputs import check_output_folder

    check_output_folder("--out-dir", out, {f"--{k.replace('_', '-')}": v for k, v in inputs.items()},
                        claims=_DATASET_NAMES)


def _report(out, result):
    segments, skips, stats = result
    counts = {}
    for s in segments:
        counts[s.split] = counts.get(s.split, 0) + 1
    click.echo(f"built {len(segments)} segments ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}) in {out}"
               + (f"; resumed {stats.get('segments_resumed', 0)}" if stats.get("segments_resumed") else ""))
    if skips:
        click.echo(f"skipped {len(skips)} (listed in dataset.json builder.skipped):", err=True)
        for s in skips[:10]:
            click.echo(f"  {s['item']}: {s['reason']}", err=True)
        if len(skips) > 10:
            click.echo(f"  ... and {len(skips) - 10} more", err=True)


@click.group("data")
def data_cmd():
    """Build, synthesise and inspect datasets in the d2m-bench format."""


@data_cmd.command("info")
@click.argument("directory", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-validate", is_flag=True, help="Summarise only (skip the per-file checks).")
def info_cmd(directory, as_json, no_validate):
    """Summarise the dataset built in DIRECTORY and check every file it references (exit 2 naming a bad one)."""
    from ..data.info import summarise, validate
    from ..data.dataset import Dataset

    ds = Dataset(directory)
    summary = summarise(ds)
    if not no_validate:
        summary["files_checked"] = validate(ds)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{summary['name']} dataset at {summary['root']}")
    for split, n in sorted(summary["segments"].items()):
        click.echo(f"  {split}: {n} segments from {summary['sequences'][split]} sequences, "
                   f"{summary['hours'][split] * 60:.1f} min; genres: "
                   + ", ".join(f"{g} {c}" for g, c in summary["genres"][split].items()))
    click.echo(f"  segment {summary['segment_seconds']:g} s, audio {summary['sample_rate']} Hz; shapes: "
               + ", ".join(f"{k} {tuple('*' if x is None else x for x in v)}" for k, v in summary["shapes"].items()))
    click.echo(f"  visual extractor: {summary['visual_extractor'] or '-'} ({summary['visual_dim']}-d); "
               f"skipped at build: {summary['skipped_at_build']}")
    if not no_validate:
        click.echo(f"  valid: {summary['files_checked']} files checked")


@data_cmd.group("build")
def build_cmd():
    """Build a dataset from a raw layout (aistpp, tiktok) or the D2M-GAN release."""


@build_cmd.command("aistpp")
@click.option("--annotations", required=True, type=click.Path(file_okay=False),
              help="AIST++ annotations folder (motions/, keypoints2d/, keypoints3d/, splits/, ignore_list.txt).")
@click.option("--music", type=click.Path(file_okay=False), default=None, help="Folder of <music_id>.wav (AIST Dance DB).")
@click.option("--videos", type=click.Path(file_okay=False), default=None, help="Folder of <video>.mp4 (c01..c09).")
@click.option("--split", "splits", multiple=True, default=("train", "test"), show_default=True,
              help="Cross-modal split(s) to build (repeatable: train, val, test).")
@click.option("--camera", default="c01", show_default=True, help="Camera for the ids, 2-D keypoints and video.")
@_SECONDS
@click.option("--drop-ignored", is_flag=True,
              help="Drop ignore_list.txt sequences (D2M-GAN kept them: its 6632 train ids include 28 of them).")
@_VISUAL
@_VISUAL_DIR
@_common
def build_aistpp_cmd(annotations, music, videos, splits, camera, segment_seconds, drop_ignored, visual, visual_dir,
                     out, strict, workers, limit, quiet):
    """AIST++ official layout -> 2-s segments (D2M-GAN ids <video>_seg<k>)."""
    from ..data.aistpp import build_aistpp

    _check_out(out, annotations=annotations, music=music, videos=videos, visual_dir=visual_dir)
    _report(out, build_aistpp(annotations, out, music=music, videos=videos, splits=splits, camera=camera,
                              seconds=segment_seconds, visual=visual, visual_dir=visual_dir,
                              drop_ignored=drop_ignored, strict=strict, workers=workers, progress=not quiet, limit=limit))


@build_cmd.command("tiktok")
@click.option("--videos", required=True, type=click.Path(file_okay=False), help="Folder of <video_id>.mp4.")
@click.option("--annotations", required=True, type=click.Path(dir_okay=False),
              help="CSV with video_id (required), duration, music_id, dancers, sha256, split (optional).")
@click.option("--openpose", type=click.Path(file_okay=False), default=None,
              help="OpenPose JSON folder (<video>_<frame:012d>_keypoints.json); default: MediaPipe pose.")
@_SECONDS
@_VISUAL
@_VISUAL_DIR
@_common
def build_tiktok_cmd(videos, annotations, openpose, segment_seconds, visual, visual_dir, out, strict, workers, limit,
                     quiet):
    """TikTok dance-music videos + annotation CSV -> 2-s segments with BODY_25 pose."""
    from ..data.tiktok import build_tiktok

    _check_out(out, videos=videos, annotations=annotations, openpose=openpose, visual_dir=visual_dir)
    _report(out, build_tiktok(videos, annotations, out, openpose=openpose, seconds=segment_seconds, visual=visual,
                              visual_dir=visual_dir, strict=strict, workers=workers, progress=not quiet, limit=limit))


def _release(kind):
    @build_cmd.command(f"{kind}-release")
    @click.option("--root", required=True, type=click.Path(file_okay=False),
                  help="Folder with the segment lists, or the aistplus/ (tiktok/) release folder.")
    @click.option("--split", "splits", multiple=True, default=("train", "test"), show_default=True,
                  help="Split(s) to build (repeatable).")
    @_common
    def cmd(root, splits, out, strict, workers, limit, quiet):
        from ..data.release import build_release

        _check_out(out, root=root)
        _report(out, build_release(root, out, kind=kind, splits=splits, strict=strict, workers=workers,
                                   progress=not quiet, limit=limit))

    cmd.help = f"Preprocessed D2M-GAN {kind} release (audio_s2/, motion_s2/, video_s2/) -> dataset."
    return cmd


_release("aistpp")
_release("tiktok")


@data_cmd.group("synth")
def synth_group():
    """Write a miniature raw dataset (aistpp or tiktok) in its official layout, for tests and trying the builders."""


def _synth(kind):
    @synth_group.command(kind)
    @click.argument("out", type=click.Path(file_okay=False))
    @click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same files).")
    def cmd(out, seed):
        _synth_run(kind, out, seed)

    cmd.help = (f"Write a miniature raw {kind} dataset in its official layout to OUT; the hint printed at the end "
                "builds it.")
    return cmd


def _synth_run(kind, out, seed):
    from ..data.synth import synth_aistpp, synth_tiktok

    root = (synth_aistpp if kind == "aistpp" else synth_tiktok)(out, seed=seed)
    hint = (f"d2m-bench data build aistpp --annotations {root}/annotations --music {root}/music "
            f"--videos {root}/videos --out-dir DIR" if kind == "aistpp" else
            f"d2m-bench data build tiktok --videos {root}/videos --annotations {root}/annotations.csv "
            f"--openpose {root}/openpose --out-dir DIR")
    click.echo(f"wrote a raw {kind} miniature to {root}\nbuild it with: {hint}")


_synth("aistpp")
_synth("tiktok")
