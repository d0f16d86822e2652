"""How many worker processes a command may start."""
from __future__ import annotations

import os

from .errors import UserError


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask under taskset/cgroups, else the count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cap_workers(requested, *, default_max: int = 8, option: str = "--workers") -> tuple[int, str | None]:
    """(workers, note): ``requested`` (None = all usable cores, at most ``default_max``) capped at
    the usable cores; ``note`` says so when a request was lowered (None otherwise). A request
    below 1 is a UserError: more processes than cores only add contention and memory."""
    cores = usable_cores()
    if requested is None:
        return min(cores, default_max), None
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise UserError(f"{option} must be a whole number >= 1, got {requested!r}")
    if requested > cores:
        return cores, f"{option} {requested} capped at the {cores} usable core(s)"
    return requested, None


def workers_option(ctx, param, value):
    """click callback for a --workers/-j option: capped at the usable cores, said on stderr."""
    import click

    n, note = cap_workers(value, option=param.opts[0] if param is not None else "--workers")  # the long name
    if note:
        click.echo(f"d2m-bench: warning: {note}", err=True)
    return n
