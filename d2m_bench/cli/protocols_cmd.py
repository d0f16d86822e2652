import click


@click.command("protocols")
@click.option("--show", metavar="NAME", help="Print one protocol's parameters and hash.")
def protocols_cmd(show):
    """List the available evaluation protocols and the command that reads each (eval or mos)."""
    import json

    from ..protocol import available_protocols, load_protocol
    from ..results.tables import format_table

    if show:
        click.echo(json.dumps(load_protocol(show).to_dict(), indent=2))
        return
    rows = [[name, p.short_hash, p.command, p.description] for name, p in available_protocols().items()]
    click.echo(format_table(rows))
