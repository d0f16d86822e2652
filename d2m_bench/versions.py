"""Installed package versions, read from package metadata (nothing is imported).

Results echo them, and cache keys include the ones that can change a cached number.
"""
from __future__ import annotations

from importlib import metadata


def package_version(name: str, missing="absent"):
    """The installed version of distribution ``name``, or ``missing``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return missing


def package_versions(names) -> dict:
    """``{name: version}``, None for a package that is not installed."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
