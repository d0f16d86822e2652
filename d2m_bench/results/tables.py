"""Plain-text tables for the terminal: every column as wide as its widest cell.

Fixed-width f-strings broke as soon as a metric name outgrew its column; tabulate measures.
"""
from __future__ import annotations

from typing import Sequence


def format_table(rows: Sequence[Sequence], headers: Sequence[str] = (), *,
                 align: Sequence[str] | None = None) -> str:
    """``rows`` of cells (formatted strings, numbers or None) as an aligned table.

    ``align`` gives one of "left", "right", "center" per column (default: all left). With
    ``headers``, a header line and a dashed rule come first; without, only the aligned rows.
    Cells are printed as given (no number parsing): format numbers before passing them.
    """
    from tabulate import tabulate

    cells = [["" if c is None else str(c) for c in row] for row in rows]
    width = max([len(headers)] + [len(r) for r in cells]) if (cells or headers) else 0
    if not width:
        return ""
    return tabulate(cells, headers=list(headers) if headers else (), tablefmt="simple" if headers else "plain",
                    colalign=tuple(align) if align else ("left",) * width, disable_numparse=True)
