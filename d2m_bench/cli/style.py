"""One CLI style for every command, applied when a command is loaded.

Commands live in many modules written by different hands; rather than asking each to subclass
something, the top-level group passes every command it loads through :func:`apply_style`.
"""
from __future__ import annotations

import click


def first_paragraph(text: str | None) -> str:
    """The docstring's first paragraph on one line: the command's entry in a group listing."""
    if not text:
        return ""
    import inspect

    para = inspect.cleandoc(text).split("\n\n", 1)[0]
    return " ".join(para.split()).split("\b", 1)[0].strip()


def apply_style(cmd: click.Command) -> click.Command:
    """Give `cmd` and its sub-commands an untruncated short help (click cuts it at 45 characters
    with "..." in group listings); returns `cmd`."""
    if not cmd.short_help and cmd.help:
        cmd.short_help = first_paragraph(cmd.help)
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            apply_style(sub)
    return cmd


def usage_error_line(exc: click.UsageError) -> str:
    """A click usage error as one line: the problem and where to read the usage.

    Click prints the usage, a hint line, a blank line and the error; in a log the cause then sits
    three lines below the command that failed.
    """
    path = exc.ctx.command_path if exc.ctx is not None else "d2m-bench"
    message = " ".join(exc.format_message().split())
    return f"{path}: error: {message} (see '{path} --help')"
