"""`d2m-bench report RESULT.json [...] --out DIR`: a static HTML report with figures."""
import click


@click.command("report")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder to write index.html, img/ and audio/ into (new, empty, or an earlier report).")
@click.option("--clips", "clips", multiple=True, help="Clip id to draw (repeatable); added to the selection.")
@click.option("--worst", type=click.IntRange(min=0), default=5, show_default=True,
              help="Clips with the lowest primary metric (beats_hit where present) to draw.")
@click.option("--best", type=click.IntRange(min=0), default=5, show_default=True,
              help="Clips with the highest primary metric to draw.")
@click.option("--random", "n_random", type=click.IntRange(min=0), default=5, show_default=True,
              help="Further clips drawn at random (seeded).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random clip sample.")
@click.option("--envelopes", is_flag=True,
              help="Recompute the onset-strength curves from the audio (the result holds only the onset times).")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=2, show_default=True,
              help="Processes drawing the figures.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the path of index.html.")
def report_cmd(inputs, out, clips, worst, best, n_random, seed, envelopes, workers, quiet):
    """Write a self-contained HTML report of eval results (and `mos aggregate` outputs).

    INPUTS are eval result JSON files and mos.json files (or folders holding one). Several
    eval results get a side-by-side table and, under one protocol, the paired comparison.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        from ..errors import UserError

        raise UserError("the report needs matplotlib: pip install 'd2m-bench[report]'") from None
    from ..report import build_report

    index = build_report(inputs, out, clips=clips, worst=worst, best=best, random=n_random, seed=seed,
                         envelopes=envelopes, workers=workers)
    click.echo(str(index) if quiet else f"wrote {index}")
