import click


@click.group("demo")
def demo_cmd():
    """Make the synthetic demo set."""


@demo_cmd.command("make")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--n", default=12, show_default=True, help="Number of clip pairs.")
@click.option("--seed", default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def make(out, n, seed, force):
    """Write OUT/gt, OUT/generated (2-s clips, 22050 Hz) and OUT/manifest.csv."""
    from ..demo import make_demo

    path = make_demo(out, n=n, seed=seed, force=force)
    click.echo(f"demo set: {n} pairs in {path}/gt and {path}/generated")
