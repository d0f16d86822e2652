"""Paper-ready pieces of the report page (issue 23): where each figure's vector copies go, how a
per-clip PNG is shown (at its print size, so its text reads at >= 9 pt), and the cross-system
figures (one metric, every system's mean and CI). Kept apart from site.py, which calls them.
"""
from __future__ import annotations

from pathlib import Path

from . import specs as sp


def vector_path(out: Path, spec) -> str:
    """Where a summary figure is also written as SVG and PDF (img/<figure id>.svg, .pdf)."""
    return str(Path(out) / "img" / f"{spec['id']}.svg")


def png_html(fid, alt) -> str:
    """A per-clip figure shown at its print size (96 CSS px per inch: text at >= 9 pt), with its
    vector copy linked."""
    from .figures import WIDTH_IN
    from .site import esc

    return (f'<img src="img/{esc(fid)}.png" alt="{esc(alt)}" width="{int(WIDTH_IN * 96)}">'
            f'<div class="note"><a href="img/{esc(fid)}.svg" download>vector copy (SVG)</a></div>')


def systems_specs(evals) -> list:
    """One cross-system spec per metric that two or more results hold (in one unit)."""
    from .site import label

    names = [label(d) for d in evals]
    metrics = list(dict.fromkeys(m for d in evals for m in d["aggregate"]))
    specs = [sp.systems_spec(evals, names, m, f"sys-{j}") for j, m in enumerate(metrics)]
    return [s for s in specs if s]


def systems_html(specs, drawn) -> str:
    from .site import esc, figure_html

    parts = ['<h2 id="systems">Systems per metric</h2><p class="note">Each system\'s mean (dot) and its '
             'percentile bootstrap CI over clips (bar), in the metric\'s display unit; vector copies: '
             'img/sys-*.svg and .pdf.</p>']
    for spec in specs:
        _, svg = drawn[spec["id"]]
        parts.append(figure_html(spec, svg, f"{esc(spec['metric'])} per system: mean and CI "
                                            f'(<a href="img/{esc(spec["id"])}.pdf" download>PDF</a>)'))
    return "".join(parts)
