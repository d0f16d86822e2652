"""Progress bars that suit both a terminal and a log file.

On a terminal this is plain tqdm. When stderr is a file or a pipe (CI, ``nohup``, ``2> log``),
tqdm's carriage-return redraws would fill the log with hundreds of overwritten states on one
"line"; instead a run shorter than :data:`LOG_INTERVAL` seconds prints nothing and a longer one
prints one plain line every :data:`LOG_INTERVAL` seconds and a last one when it ends.
"""
from __future__ import annotations

import sys
from typing import Iterable, TextIO

#: Seconds between two progress lines in a log (and before the first one).
LOG_INTERVAL = 10.0


class _PlainLines:
    """A stream for tqdm that turns each redraw ("\\r" + state + padding) into one line."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:  # the clearing writes (spaces, a lone "\r" or "\n") carry no state
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str | None = None,
                 unit: str = "it", disable: bool = False, leave: bool = True, file: TextIO | None = None,
                 **kwargs):
    """A ``tqdm`` bar writing to ``file`` (default stderr); plain periodic lines unless it is a terminal.

    Takes tqdm's arguments and returns a tqdm object (iterate it, or call ``update`` and ``close``
    / use it as a context manager).
    """
    from tqdm import tqdm

    stream = file if file is not None else sys.stderr
    if disable or _is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, leave=leave, file=stream, **kwargs)
    prefix = f"{desc}: " if desc else ""
    kwargs.update(mininterval=LOG_INTERVAL, delay=LOG_INTERVAL, dynamic_ncols=False,
                  bar_format=prefix + "{n_fmt}/{total_fmt} {unit} [{elapsed} elapsed, {remaining} left, {rate_fmt}]")
    return tqdm(iterable, total=total, unit=unit, leave=True, file=_PlainLines(stream), **kwargs)
