import click

from .grammar import group_option_on_subcommands


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
    from ..io.cache import cache_info, default_root, is_tagged

    where = root or default_root()
    click.echo(f"cache root: {where}")
    data = cache_info(root)
    if data and not is_tagged(where):
        click.echo("(no d2m-bench CACHEDIR.TAG in the root: `cache clear` will refuse it)")
    if not data:
        click.echo("(empty)")
    for name, row in data.items():
        click.echo(f"{name:<16} {row['entries']:>8} entries {row['bytes'] / 1e6:>10.2f} MB")


@cache_cmd.command("clear")
@click.argument("namespace", required=False)
@click.pass_obj
def clear(root, namespace):
    """Remove the entries of NAMESPACE (e.g. events, vggish) or of every namespace.

    Only a root that d2m-bench created (it holds d2m-bench's CACHEDIR.TAG) is touched, and
    in it only files named like cache entries; anything else is left and counted.
    """
    from ..io.cache import cache_clear

    done = cache_clear(root, namespace)
    click.echo(f"removed {done['removed']} entries")
    if done["kept"]:
        click.echo(f"left {done['kept']} file(s) that are not cache entries", err=True)


def _store_root(ctx, value):
    ctx.obj = value  # as the group does: @pass_obj hands it to the command


# `cache info --root DIR` works as `cache --root DIR info` does (the one grammar, cli/grammar.py)
group_option_on_subcommands(cache_cmd, next(p for p in cache_cmd.params if p.name == "root"), _store_root)
