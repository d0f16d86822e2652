"""Where the shipped data lives: the same code for a checkout and an installed wheel.

The repository keeps ``protocols/`` and ``results/reported/`` at its top level; the wheel
installs them as ``d2m_bench/protocols`` and ``d2m_bench/reported`` (pyproject's package-dir
mapping). An editable install leaves them where they are, so both places are looked at.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = {"protocols": "protocols", "reported": "results/reported"}


def shipped_dir(name: str) -> Path:
    """The folder of shipped data ``name`` ('protocols' or 'reported')."""
    installed = _PACKAGE / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / _CHECKOUT[name]
