"""`d2m-bench report RESULT.json [...] --out-dir DIR`: a static HTML report with figures."""
import click

from .grammar import out_dir, workers


@click.command("report")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@out_dir("Folder to write index.html, img/ and audio/ into (new, empty, or an earlier report).")
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
@click.option("--latex", type=click.Path(dir_okay=False), default=None,
              help="Also write the systems x metrics table of the eval results as LaTeX (booktabs) to this file, "
                   "and the same cells as CSV beside it (.csv).")
@click.option("--self-contained", is_flag=True,
              help="Also write OUT_DIR/report.html: the page with every figure and audio clip embedded (one file "
                   "to send or archive).")
@workers("Processes drawing the figures")
@click.option("--quiet", "-q", is_flag=True, help="Print only the path of index.html.")
def report_cmd(inputs, out, clips, worst, best, n_random, seed, envelopes, latex, self_contained, workers, quiet):
    """Write an HTML report of eval results (and `mos aggregate` outputs) with figures and audio.

    INPUTS are eval result JSON files and mos.json files (or folders holding one). Several
    eval results get a side-by-side table, a figure per metric across the systems and, under
    one protocol, the paired comparison.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        from ..errors import UserError

        raise UserError("the report needs matplotlib: pip install 'd2m-bench[report]'") from None
    from ..report import build_report

    if latex:  # checked before any figure is drawn
        from ..io.outputs import check_outputs
        from ..results.latex import csv_path_for

        check_outputs({"--latex": latex, "--latex (CSV)": csv_path_for(latex)}, {"INPUTS": list(inputs)})
    index = build_report(inputs, out, clips=clips, worst=worst, best=best, random=n_random, seed=seed,
                         envelopes=envelopes, workers=workers)
    written = [index]
    if self_contained:
        from ..report.inline import inline_report

        written.append(inline_report(index))
    if latex:
        from ..report.site import label, load_inputs
        from ..results.latex import from_results, write_tables

        evals, _ = load_inputs(inputs)
        if evals:
            written += write_tables([from_results(evals, [label(d) for d in evals])], latex,
                                    caption="Systems scored by d2m-bench.")
    if quiet:
        click.echo(str(index))
    else:
        click.echo("wrote " + ", ".join(map(str, written)))
