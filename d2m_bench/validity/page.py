"""The validity report page: the metric cards, the table and one figure per metric.

Each figure is drawn from the same numbers as the table: the mean of the metric under every
transformation with its bootstrap CI, the identity's mean as a line, each point coloured by
its verdict (detects, rewards, blind). matplotlib (Agg, the ``report`` extra), inline SVG.
"""
from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from ..io.atomic import write_text
from ..report.site import CSS
from ..report.templates import render, trusted_svg
from .run import card_lines, fmt

COLOURS = {"reference": "#444444", "detects": "#1b6e1b", "rewards": "#b00020", "blind": "#8a8a8a"}


def _p(v) -> str:
    return "-" if v is None else f"{v:.3g}"


def metric_figure(metric: str, rows: list) -> str:
    from ..report.figures import _mpl, _svg

    plt = _mpl()
    pct = metric.startswith(("beats_", "loris_", "onset_", "beat_"))
    scale = 100.0 if pct else 1.0
    fig, ax = plt.subplots(figsize=(7.0, 0.28 * len(rows) + 0.9))
    for i, r in enumerate(rows):
        lo = r["ci_low"] if r["ci_low"] is not None else r["mean"]
        hi = r["ci_high"] if r["ci_high"] is not None else r["mean"]
        colour = COLOURS.get(r["verdict"], "#444444")
        ax.plot([lo * scale, hi * scale], [i, i], color=colour, lw=1.5)
        ax.plot([r["mean"] * scale], [i], "o", color=colour, ms=4)
    identity = next((r["mean"] for r in rows if r["transformation"] == "identity"), None)
    if identity is not None:
        ax.axvline(identity * scale, color="#444444", lw=0.8, ls="--")
    ax.set_yticks(range(len(rows)), [r["transformation"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} ({'x100' if pct else 'value'}); dashed: identity; green detects, red rewards, grey blind")
    fig.tight_layout()
    svg = _svg(fig)
    plt.close(fig)
    return svg


_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>d2m-bench validity</title>\
<style>{{ css }}</style></head><body><h1>Metric validity</h1><p class="note">Protocol {{ doc.protocol.name }} \
<code>{{ doc.protocol.hash[:12] }}</code>; gt {{ doc.gt }} ({{ doc.n_clips }} clips); battery v{{ doc.battery.version }}, \
seed {{ doc.battery.seed }}. {{ doc.test }}.</p>{% for note in notes %}<p class="note">{{ note }}</p>{% endfor %}\
<h2>Metric cards</h2><ul>{% for line in cards %}<li>{{ line }}</li>{% endfor %}</ul>\
{% for m in metrics %}<h2 id="{{ m.name }}">{{ m.name }}</h2><figure>{{ m.svg }}</figure><table><thead><tr>\
<th class="l">transformation</th><th>n</th><th>mean</th><th>CI</th><th>T - identity</th><th>p</th><th>p (Holm)</th>\
<th class="l">verdict</th></tr></thead><tbody>{% for r in m.rows %}<tr><td class="l">{{ r.transformation }}</td>\
<td>{{ r.n }}</td><td>{{ r.mean }}</td><td>[{{ r.low }}, {{ r.high }}]</td><td>{{ r.difference }}</td><td>{{ r.p }}</td>\
<td>{{ r.p_holm }}</td><td class="l">{{ r.verdict }}</td></tr>{% endfor %}</tbody></table>{% endfor %}</body></html>
"""


def write_page(doc: dict, out) -> Path:
    """``out/index.html`` for a validity document (written through the autoescaping templates:
    clip ids and folder names come from the user's files)."""
    out = Path(out)
    by_metric: dict = {}
    for r in doc["rows"]:
        by_metric.setdefault(r["metric"], []).append(r)
    metrics = []
    for metric, rows in by_metric.items():
        pct = metric.startswith(("beats_", "loris_", "onset_", "beat_"))
        metrics.append({"name": metric, "svg": trusted_svg(metric_figure(metric, rows)), "rows": [
            {"transformation": r["transformation"], "n": r["n"], "mean": fmt(r["mean"], pct),
             "low": fmt(r["ci_low"], pct), "high": fmt(r["ci_high"], pct), "difference": fmt(r["difference"], pct),
             "p": _p(r["p"]), "p_holm": _p(r["p_holm"]), "verdict": r["verdict"]} for r in rows]})
    page = render(_PAGE, css=Markup(CSS), doc=doc, notes=doc.get("notes", []), cards=card_lines(doc),
                  metrics=metrics)
    path = out / "index.html"
    write_text(path, str(page) + "\n")
    return path
