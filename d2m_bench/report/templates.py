"""The HTML of `report` and `leaderboard --html`, written only through Jinja2 with autoescaping.

Every value from a result file (names, metric values, notes, paths) is escaped by the engine,
in text and attributes alike: a value ``"><img src=x onerror=...>`` once ran script from a
``data-v="..."`` attribute that string formatting left unescaped. Only what the toolkit itself
drew (inline SVG from matplotlib) is marked safe, and only fragments rendered here are passed
on as Markup.
"""
from __future__ import annotations

import json
from functools import lru_cache

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                       keep_trailing_newline=False)


@lru_cache(maxsize=None)
def _template(source: str):
    return environment().from_string(source)


def render(source: str, **context) -> Markup:
    """``source`` (a template) rendered with autoescaping; the result may be nested in another."""
    return Markup(_template(source).render(**context))


def trusted_svg(svg) -> Markup:
    """An SVG this toolkit drew (matplotlib's output, text as <text> elements it escaped)."""
    return Markup(svg or "")


_FIGURE = ('<figure id="{{ id }}" class="fig fig-{{ kind }}" data-kind="{{ kind }}" data-spec="{{ data }}">'
           '{{ body }}<figcaption>{{ caption }}</figcaption></figure>')


def figure_html(spec, body, caption) -> Markup:
    """A report figure: its spec as data-spec (the figure's numbers, for a reader's check), its body and caption."""
    data = json.dumps(spec, separators=(",", ":"), allow_nan=False)
    return render(_FIGURE, id=spec["id"], kind=spec["kind"], data=data, body=body, caption=caption)
