import click

from .grammar import out_dir, workers


@click.group("baseline")
def baseline_cmd():
    """Run baselines and reference systems on a built dataset (one wav per segment + provenance)."""


@baseline_cmd.command("list")
def list_cmd():
    """List the baselines, what they need and what they re-implement or adapt."""
    from d2m_bench.baselines import REGISTRY

    for name, cls in REGISTRY.items():
        needs = []
        if cls.needs_upstream:
            needs.append("--upstream " + " + ".join(cls().upstream_files("<segment_id>")))
        if cls.renders_midi:
            needs.append("fluidsynth")
        needs += list(cls.columns)
        extra = f"  [{cls.upstream}]" if cls.upstream else ""
        click.echo(f"{name:14s} {cls.kind:16s} {cls.summary}{extra}")
        if needs:
            click.echo(f"{'':14s} {'':16s} needs: {', '.join(needs)}")


@baseline_cmd.command("run")
@click.argument("name")
@click.option("--data", required=True, type=click.Path(), help="A built dataset folder.")
@click.option("--split", default="test", show_default=True, help="Split to generate for.")
@out_dir("Output folder (OUT_DIR/<segment_id>.wav).")
@click.option("--protocol", "-p", default="d2m-aistpp-2s", show_default=True,
              help="Protocol name or TOML path: audio is written at its audio.sample_rate (the rate eval scores at).")
@click.option("--upstream", type=click.Path(), default=None,
              help="Folder of the upstream system's outputs (cmt: <id>.mid + <id>.json; foley-music: <id>.mid).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed (shuffled-gt, white-noise).")
@click.option("--soundfont", type=click.Path(dir_okay=False), default=None,
              help="GM soundfont (default $D2M_SOUNDFONT or /usr/share/sounds/sf2/FluidR3_GM.sf2).")
@click.option("--beam-width", type=int, default=None, help="dance2music beam width (default 50, as upstream).")
@workers("Segments rendered at once")
@click.option("--force", is_flag=True, help="Replace earlier outputs in OUT.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def run_cmd(name, data, split, out, protocol, upstream, seed, soundfont, beam_width, workers, force, quiet):
    """Generate audio for every segment of a split with baseline NAME."""
    from d2m_bench import baselines

    options = {} if beam_width is None else {"beam_width": beam_width}
    doc = baselines.run_baseline(baselines.get(name), data, out, split=split, protocol=protocol, seed=seed,
                                 upstream=upstream, soundfont=soundfont, workers=workers, force=force,
                                 progress=not quiet, options=options)
    if not quiet:
        click.echo(f"{name}: wrote {doc['dataset']['segments']} clips ({doc['sample_rate']} Hz) and "
                   f"provenance.json to {out}")
        click.echo("score with: " + score_command(doc, out, protocol))


def score_command(doc: dict, out, protocol: str) -> str:
    """The eval command that scores this run: gt folder, dataset (genre, motion), split, protocol."""
    import shlex
    from pathlib import Path

    data = doc["dataset"]["path"]
    split = doc["dataset"]["split"]
    args = ["d2m-bench", "eval", "--pred", str(out), "--gt", str(Path(data) / "audio" / split),
            "--data", data, "--split", split, "--protocol", protocol, "--system", doc["baseline"],
            "--out", f"results/runs/{doc['baseline']}.json"]
    return " ".join(shlex.quote(a) for a in args)


@baseline_cmd.command("video-rhythm")
@click.argument("videos", nargs=-1, required=True, type=click.Path())
@out_dir("Folder for <video stem>.json.")
def video_rhythm_cmd(videos, out):
    """CMT's video inputs (flow magnitude, visual beats, tempo) of each of VIDEOS as OUT/<stem>.json."""
    import json
    from pathlib import Path

    from d2m_bench.baselines.video_rhythm import video_metadata

    Path(out).mkdir(parents=True, exist_ok=True)
    for video in videos:
        meta = video_metadata(video)
        dest = Path(out) / f"{Path(video).stem}.json"
        dest.write_text(json.dumps(meta, indent=2) + "\n")
        click.echo(f"{dest}: tempo {meta['tempo']:.1f} bpm, {len(meta['vbeats'])} visual beats, "
                   f"{meta['duration']:.2f} s")
