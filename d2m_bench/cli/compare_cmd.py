"""`d2m-bench compare A.json B.json [...]`: paired tests of eval results on the same clips."""
import click

from .grammar import out_dir


@click.command("compare")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@out_dir("Folder for compare.json and compare.csv (default: print only).", required=False)
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="CI level (default: the protocol's ci.level).")
@click.option("--resamples", type=click.IntRange(min=1), default=None,
              help="Bootstrap resamples (default: the protocol's ci.n_resamples).")
@click.option("--seed", type=int, default=None, help="Bootstrap seed (default: the protocol's ci.seed).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Significance level for the Holm-corrected p-values.")
@click.option("--quiet", "-q", is_flag=True, help="No table; only the paths written.")
def compare_cmd(results, out, level, resamples, seed, alpha, quiet):
    """Compare eval RESULTS (JSON files of `d2m-bench eval`) clip by clip: mean difference with a
    paired bootstrap CI, Wilcoxon signed-rank p (Holm-corrected across metrics and pairs) and effect sizes.

    Results must share the protocol hash and, per metric, the comparable key; clips are
    paired by id and the ids only one side has are listed.
    """
    from ..results.compare import compare, load_result, table, write_outputs

    if out:  # before the bootstrap: a result file named compare.json in OUT would be overwritten
        from ..io.outputs import check_output_folder

        check_output_folder("--out-dir", out, {"RESULTS": list(results)}, claims=("compare.json", "compare.csv"))
    doc = compare([load_result(p) for p in results], level=level, n_resamples=resamples, seed=seed, alpha=alpha)
    if not quiet:
        click.echo(table(doc))
    if out:
        paths = write_outputs(doc, out, results)
        click.echo("wrote " + ", ".join(map(str, paths)))
