"""The one CLI grammar, as option factories every command uses (checked by test_cli_style.py):

- ``-j/--workers N``: processes; one default everywhere: the usable cores, at most 8
  (d2m_bench.parallel.cap_workers), a larger request capped with a warning.
- ``--out FILE`` names a single file; ``--out-dir DIR`` a folder. A folder command still
  accepts the old ``--out DIR`` (hidden) and says on stderr that it is deprecated.
- a fixed set of kinds is a set of subcommands (``data build aistpp``, ``data synth tiktok``);
  a name from an open registry (protocol, embedder, weights, baseline) is a value, checked
  against the known names with "did you mean" (d2m_bench.names).
- every option of a group is accepted on its subcommands too (``cache info --root DIR``).
"""
from __future__ import annotations

import functools

import click

WORKERS_HELP = "the usable cores, at most 8"


def workers(what: str = "Worker processes"):
    """``-j/--workers`` with the one default (None -> the usable cores, at most 8)."""
    from ..parallel import workers_option

    return click.option("--workers", "-j", type=int, default=None, callback=workers_option,
                        help=f"{what} (default: {WORKERS_HELP}).")


def _deprecated(ctx, old: str, new: str) -> None:
    click.echo(f"{ctx.command_path}: warning: {old} is deprecated for a folder; use {new}", err=True)


def out_dir(help: str, *, required: bool = True, param: str = "out", **path_kw):
    """``--out-dir DIR`` (passed to the command as ``param``) plus the deprecated ``--out DIR``."""
    kind = click.Path(file_okay=False, **path_kw)

    def deco(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            old = kwargs.pop("_out_deprecated", None)
            ctx = click.get_current_context()
            if old is not None:
                if kwargs.get(param) is not None:
                    raise click.UsageError("give --out-dir only (--out is its deprecated spelling)", ctx=ctx)
                _deprecated(ctx, "--out", "--out-dir")
                kwargs[param] = old
            if required and kwargs.get(param) is None:
                raise click.UsageError("Missing option '--out-dir'.", ctx=ctx)
            return f(*args, **kwargs)

        wrapper = click.option("--out", "_out_deprecated", type=kind, default=None, hidden=True,
                               help="Deprecated spelling of --out-dir.")(wrapper)
        return click.option("--out-dir", param, type=kind, default=None,
                            help=help + ("  [required]" if required else ""))(wrapper)

    return deco


def group_option_on_subcommands(group: click.Group, option: click.Option, store) -> None:
    """Give every subcommand of ``group`` a copy of the group's ``option`` (not exposed to the
    command); ``store(ctx, value)`` records a value given after the subcommand as the group's
    callback would."""
    def callback(ctx, param, value):
        if value is not None:
            store(ctx, value)
        return value

    for sub in group.commands.values():
        if any(option.name == p.name for p in sub.params):
            continue
        copy = click.Option(option.opts, type=option.type, default=None, expose_value=False, callback=callback,
                            is_eager=False, help=option.help)
        sub.params.append(copy)
