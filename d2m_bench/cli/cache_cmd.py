import click


@click.group("cache")
@click.option("--root", type=click.Path(file_okay=False), default=None, help="Cache directory (default: $D2M_BENCH_CACHE or ~/.cache/d2m-bench).")
@click.pass_context
def cache_cmd(ctx, root):
    """Inspect or clear the per-file cache."""
    ctx.obj = root


@cache_cmd.command("info")
@click.pass_obj
def info(root):
    """Entries and size per namespace."""
    from ..cache import cache_info, default_root

    click.echo(f"cache root: {root or default_root()}")
    data = cache_info(root)
    if not data:
        click.echo("(empty)")
    for name, row in data.items():
        click.echo(f"{name:<16} {row['entries']:>8} entries {row['bytes'] / 1e6:>10.2f} MB")


@cache_cmd.command("clear")
@click.argument("namespace", required=False)
@click.pass_obj
def clear(root, namespace):
    """Remove NAMESPACE (e.g. onsets, vggish) or everything."""
    from ..cache import cache_clear

    n = cache_clear(root, namespace)
    click.echo(f"removed {n} entries")
