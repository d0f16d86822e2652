"""The HTML report (`d2m-bench report`) and the HTML leaderboard (`leaderboard --html`).

``specs`` turns results into the numbers each figure shows, ``figures`` draws them with
matplotlib (Agg, in worker processes), ``site`` writes the static folder, ``leaderboard_html``
the sortable leaderboard page. matplotlib comes with the ``report`` extra.
"""
from .site import build_report

__all__ = ["build_report"]
