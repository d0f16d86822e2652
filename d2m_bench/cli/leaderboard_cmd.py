import click


@click.command("leaderboard")
@click.option("--results", "results_dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder with runs/*.json (and optionally reported/*.csv); need not exist.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Default: RESULTS/leaderboard.csv")
@click.option("--md", "md_path", type=click.Path(dir_okay=False), help="Default: RESULTS/leaderboard.md")
@click.option("--shipped/--no-shipped", default=True, show_default=True,
              help="Include the paper numbers shipped with d2m-bench (RESULTS/reported/ is always read).")
@click.option("--strict", is_flag=True,
              help="A malformed run file or row (a value that is not a finite number, no metric, ...) is an "
                   "error (exit 2) instead of being skipped with a warning.")
@click.option("--html", "html_path", is_flag=False, flag_value="", default=None, type=click.Path(dir_okay=False),
              help="Also write the leaderboard as one sortable HTML page (default path: RESULTS/leaderboard.html).")
@click.option("--latex", "latex_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the leaderboard as LaTeX booktabs tables (one per comparable group; reported rows "
                   "marked) to this file, and the same cells as CSV beside it (.csv).")
@click.option("--floors/--no-floors", default=True, show_default=True,
              help="Score the reference systems (gt, shuffled gt, metronome at the set's median tempo, white noise, "
                   "silence) on every gt set that has measured runs and lacks them, where its gt files are "
                   "reachable (cached under $D2M_BENCH_CACHE/floors).")
def leaderboard_cmd(results_dir, csv_path, md_path, shipped, strict, html_path, latex_path, floors):
    """Build results/leaderboard.csv from reported numbers and runs.

    Only finite numbers from well-formed run files are ranked; anything else is skipped with
    a warning naming the file (or, with --strict, stops the command before anything is written).
    """
    from ..results.leaderboard import write_leaderboard

    from ..results.runfiles import survey

    notes = []
    if html_path is not None:
        html_path = html_path or results_dir + "/leaderboard.html"
    extra = {"--html": html_path}
    if latex_path:
        from ..results.latex import csv_path_for

        extra.update({"--latex": latex_path, "--latex (CSV)": csv_path_for(latex_path)})
    found, where = survey(results_dir)
    for note in where:
        click.echo(f"warning: {note}", err=True)
    rows = write_leaderboard(results_dir, csv_path, md_path, notes=notes, shipped=shipped, strict=strict,
                             extra_outputs=extra, floors=floors, progress=True)  # checked with the others, before any work
    for note in notes:
        click.echo(f"warning: {note}", err=True)
    if html_path is not None:
        from ..report.leaderboard_html import write_html

        click.echo(f"wrote {write_html(rows, html_path)}")
    if latex_path:
        from ..results.latex import from_leaderboard, write_tables

        paths = write_tables(from_leaderboard(rows), latex_path, caption="Leaderboard of d2m-bench.")
        click.echo("wrote " + ", ".join(map(str, paths)))
    kinds = {k: sum(r["kind"] == k for r in rows) for k in ("measured", "reference", "reported")}
    click.echo(f"{len(rows)} rows ({kinds['measured']} measured from {found} run file(s) in {results_dir}/runs/, "
               f"{kinds['reference']} reference, {kinds['reported']} reported) -> "
               f"{csv_path or results_dir + '/leaderboard.csv'}, {md_path or results_dir + '/leaderboard.md'}")
