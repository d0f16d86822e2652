"""`d2m-bench cite`: BibTeX of d2m-bench and of the papers a protocol or a result relies on."""
import click


@click.command("cite")
@click.option("--protocol", "-p", default=None, help="Only the papers this protocol (name or TOML file) relies on.")
@click.option("--result", type=click.Path(dir_okay=False), default=None,
              help="Only the papers this eval result relies on (its protocol, less the sections it skipped).")
@click.option("--list", "as_list", is_flag=True, help="One line per paper (key: what it is cited for) instead of BibTeX.")
def cite_cmd(protocol, result, as_list):
    """Print the BibTeX of d2m-bench and of every paper whose metric, model or data it implements
    (with --protocol or --result: exactly those a result relies on)."""
    from .. import __version__
    from ..citations import PAPERS, TOOL_BIBTEX, bibtex, papers_for_protocol, papers_for_result
    from ..errors import UserError

    if protocol and result:
        raise UserError("give --protocol or --result, not both")
    if result:
        from ..results.compare import load_result

        papers = papers_for_result(load_result(result))
    elif protocol:
        papers = papers_for_protocol(protocol)
    else:
        papers = list(PAPERS.values())
    if as_list:
        for p in papers:
            click.echo(f"{p.key}: {p.what}")
        return
    click.echo(TOOL_BIBTEX % __version__ + "\n\n" + bibtex(papers), nl=False)
