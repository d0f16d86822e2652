import click


@click.command("protocols")
@click.option("--show", metavar="NAME", help="Print one protocol's parameters and hash.")
def protocols_cmd(show):
    """List the available evaluation protocols and the command that reads each (eval or mos)."""
    import json

    from ..protocol import available_protocols, load_protocol

    if show:
        click.echo(json.dumps(load_protocol(show).to_dict(), indent=2))
        return
    for name, p in available_protocols().items():
        click.echo(f"{name:<18} {p.short_hash}  {p.command:<5} {p.description}")
