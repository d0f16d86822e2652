import click


@click.group("demo")
def demo_cmd():
    """Make the synthetic demo set."""


@demo_cmd.command("make")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--pairs", "n", type=click.IntRange(min=1), default=12, show_default=True,
              help="Number of gt/generated clip pairs.")
@click.option("--n", "n_old", type=click.IntRange(min=1), default=None, hidden=True)  # the old spelling of --pairs
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same files).")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def make(out, n, n_old, seed, force):
    """Write the synthetic demo set to OUT: OUT/gt, OUT/generated (2-s clips, 22050 Hz), OUT/manifest.csv."""
    from ..synth.demo import make_demo

    n = n_old if n_old is not None else n
    path = make_demo(out, n=n, seed=seed, force=force)
    click.echo(f"demo set: {n} pairs in {path}/gt and {path}/generated")
