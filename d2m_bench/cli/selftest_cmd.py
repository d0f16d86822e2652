import click


@click.command("selftest")
@click.option("--case", "cases", multiple=True, metavar="NAME",
              help="Run only this case (repeatable); default: the whole battery.")
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Write the generated inputs into this folder and keep them (default: a temporary folder).")
@click.option("--expected", type=click.Path(dir_okay=False), default=None,
              help="Compare against this expected-values JSON instead of the shipped one.")
@click.option("--list", "list_only", is_flag=True, help="List the cases and exit.")
@click.option("--quiet", "-q", is_flag=True, help="Print only failures and the summary line.")
def selftest_cmd(cases, keep, expected, list_only, quiet):
    """Check this installation against the published scripts on a fixed battery.

    Each case (wav at several rates, AAC and mp3, unequal lengths, a silent gt, motion for
    BeatAlign/BAS, embeddings for FAD) runs through eval; its numbers are compared with values
    that literal ports of the published scripts computed on the same inputs. Exits 1 when any
    case differs.
    """
    import sys
    import time

    from ..errors import UserError
    from ..selftest import CASES, run_selftest

    if list_only:
        for c in CASES:
            click.echo(f"{c.name:<28}{c.protocol if c.kind != 'fad' else '-':<22}{c.what}")
        return
    unknown = sorted(set(cases) - {c.name for c in CASES})
    if unknown:
        raise UserError(f"unknown case(s) {', '.join(unknown)} (see `d2m-bench selftest --list`)")
    start = time.perf_counter()

    def progress(case):
        if not quiet and sys.stderr.isatty():
            click.echo(f"  {case.name} ...", err=True)

    results = run_selftest(expected=expected, workdir=keep, only=set(cases) or None, progress=progress)
    width = max(len(r.case.name) for r in results)
    if not quiet:
        click.echo(f"{'case':<{width}}  {'status':<6} {'checks':>6} {'max diff':>9} {'time':>6}  what")
    for r in results:
        if quiet and (r.passed or r.skipped):
            continue
        status = "SKIP" if r.skipped else "PASS" if r.passed else "FAIL"
        if r.skipped:
            click.echo(f"{r.case.name:<{width}}  {status:<6} {'':>6} {'':>9} {'':>6}  {r.case.what} ({r.skipped})")
            continue
        click.echo(f"{r.case.name:<{width}}  {status:<6} {r.checks:>6} {r.max_diff:>9.2g} {r.seconds:>5.1f}s  {r.case.what}")
        for f in r.failures[:5]:
            click.echo(f"{'':<{width}}    {f}")
        if len(r.failures) > 5:
            click.echo(f"{'':<{width}}    ... and {len(r.failures) - 5} more")
    failed = [r.case.name for r in results if not r.passed and not r.skipped]
    skipped = [r for r in results if r.skipped]
    ran = len(results) - len(skipped)
    summary = (f"selftest: {ran - len(failed)}/{ran} cases equal the published scripts "
               f"({time.perf_counter() - start:.1f} s)")
    if skipped:
        summary += f"; {len(skipped)} skipped ({'; '.join(f'{r.case.name}: {r.skipped}' for r in skipped)})"
    if keep:
        summary += f"; inputs kept in {keep}"
    click.echo(summary if not failed else f"{summary}; FAILED: {', '.join(failed)}")
    if failed:
        sys.exit(1)
