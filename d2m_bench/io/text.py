"""Text from data files on its way to a terminal, a Markdown table, a CSV cell or a figure.

A system name is whatever a result file says: ``evil | 99.9 |\\n| injected row`` became an
extra leaderboard row, a newline printed a fake ``d2m-bench: error:`` line, ESC bytes reached
terminals, and a genre label ``$\\frac{1}{$`` made matplotlib's mathtext parser raise. Each
sink gets its own cleaning here (figures turn mathtext off: report/figures.py).
"""
from __future__ import annotations

import html
import re

# C0 and C1 controls and DEL, plus the Unicode line/paragraph separators terminals break on.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text) -> str:
    """``text`` with every control character shown as an escape: one terminal line, no ESC."""
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def plain(text) -> str:
    """``text`` with control characters replaced by spaces (names in tables and CSV cells)."""
    return _CONTROLS.sub(" ", str(text))


def md_cell(text) -> str:
    """A Markdown table cell: no line breaks or controls, pipes escaped, HTML escaped."""
    return html.escape(plain(text), quote=False).replace("|", "\\|")


def plain_fields(row: dict) -> dict:
    """``row`` with every text value passed through ``plain`` (CSV cells: no ESC, no line breaks)."""
    return {k: plain(v) if isinstance(v, str) else v for k, v in row.items()}
