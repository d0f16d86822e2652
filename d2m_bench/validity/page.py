"""The validity report page: the metric cards, the table and one figure per metric.

Each figure is drawn from the same numbers as the table: the mean of the metric under every
transformation with its bootstrap CI, the identity's mean as a line, each point coloured by
its verdict (detects, rewards, blind). matplotlib (Agg, the ``report`` extra), inline SVG.
"""
from __future__ import annotations

from pathlib import Path

from ..io.atomic import write_text
from ..report.site import CSS, esc
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


def write_page(doc: dict, out) -> Path:
    """``out/index.html`` for a validity document."""
    out = Path(out)
    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>d2m-bench validity</title>",
             f"<style>{CSS}</style></head><body><h1>Metric validity</h1>",
             f"<p class=\"note\">Protocol {esc(doc['protocol']['name'])} <code>{esc(doc['protocol']['hash'][:12])}</code>; "
             f"gt {esc(doc['gt'])} ({doc['n_clips']} clips); battery v{doc['battery']['version']}, seed "
             f"{doc['battery']['seed']}. {esc(doc['test'])}.</p>"]
    for note in doc.get("notes", []):
        parts.append(f"<p class=\"note\">{esc(note)}</p>")
    parts.append("<h2>Metric cards</h2><ul>" + "".join(f"<li>{esc(line)}</li>" for line in card_lines(doc)) + "</ul>")
    by_metric: dict = {}
    for r in doc["rows"]:
        by_metric.setdefault(r["metric"], []).append(r)
    for metric, rows in by_metric.items():
        pct = metric.startswith(("beats_", "loris_", "onset_", "beat_"))
        parts.append(f"<h2 id=\"{esc(metric)}\">{esc(metric)}</h2><figure>{metric_figure(metric, rows)}</figure>")
        body = "".join(
            f"<tr><td class=\"l\">{esc(r['transformation'])}</td><td>{r['n']}</td><td>{fmt(r['mean'], pct)}</td>"
            f"<td>[{fmt(r['ci_low'], pct)}, {fmt(r['ci_high'], pct)}]</td><td>{fmt(r['difference'], pct)}</td>"
            f"<td>{_p(r['p'])}</td><td>{_p(r['p_holm'])}</td>"
            f"<td class=\"l\">{esc(r['verdict'])}</td></tr>" for r in rows)
        parts.append("<table><thead><tr><th class=\"l\">transformation</th><th>n</th><th>mean</th><th>CI</th>"
                     f"<th>T - identity</th><th>p</th><th>p (Holm)</th><th class=\"l\">verdict</th></tr></thead>"
                     f"<tbody>{body}</tbody></table>")
    parts.append("</body></html>\n")
    path = out / "index.html"
    write_text(path, "".join(parts))
    return path
