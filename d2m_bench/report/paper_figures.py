"""Paper-ready pieces of the report page (issue 23): where each figure's vector copies go, how a
per-clip PNG is shown (at its print size, so its text reads at >= 9 pt), and the cross-system
figures (one metric, every system's mean and CI). Kept apart from site.py, which calls them.
"""
from __future__ import annotations

from pathlib import Path

from . import specs as sp
from .templates import figure_html, render, trusted_svg


def vector_path(out: Path, spec) -> str:
    """Where a summary figure is also written as SVG and PDF (img/<figure id>.svg, .pdf)."""
    return str(Path(out) / "img" / f"{spec['id']}.svg")


_PNG = ('<img src="img/{{ fid }}.png" alt="{{ alt }}" width="{{ width }}"><div class="note">'
        '<a href="img/{{ fid }}.svg" download>vector copy (SVG)</a></div>')


def png_html(fid, alt):
    """A per-clip figure shown at its print size (96 CSS px per inch: text at >= 9 pt), with its
    vector copy linked."""
    from .figures import WIDTH_IN

    return render(_PNG, fid=fid, alt=alt, width=int(WIDTH_IN * 96))


def systems_specs(evals) -> list:
    """One cross-system spec per metric that two or more results hold (in one unit)."""
    names = [d.get("system") or Path(d["_path"]).stem for d in evals]  # site.label
    metrics = list(dict.fromkeys(m for d in evals for m in d["aggregate"]))
    specs = [sp.systems_spec(evals, names, m, f"sys-{j}") for j, m in enumerate(metrics)]
    return [s for s in specs if s]


_SYSTEMS = ('<h2 id="systems">Systems per metric</h2><p class="note">Each system\'s mean (dot) and its percentile '
            'bootstrap CI over clips (bar), in the metric\'s display unit; vector copies: img/sys-*.svg and .pdf.</p>'
            '{% for f in figures %}{{ f }}{% endfor %}')
_CAPTION = '{{ metric }} per system: mean and CI (<a href="img/{{ id }}.pdf" download>PDF</a>)'


def systems_html(specs, drawn):
    figures = [figure_html(spec, trusted_svg(drawn[spec["id"]][1]), render(_CAPTION, metric=spec["metric"], id=spec["id"]))
               for spec in specs]
    return render(_SYSTEMS, figures=figures)
