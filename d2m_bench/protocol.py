"""Evaluation protocols: declarative TOML files, one per protocol, with a stable hash.

A protocol holds every parameter that changes a number. Its hash is a SHA-256 over the
canonical JSON of those parameters (not its name or description), so two files with the
same parameters share a hash and any changed parameter gives a new one. Overrides from the
command line produce a derived protocol whose name records them and whose hash differs.
"""
from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .cache import config_digest
from .errors import UserError

NON_PARAMETER_KEYS = ("name", "description", "citation")


def protocols_dir() -> Path:
    env = os.environ.get("D2M_BENCH_PROTOCOLS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "protocols"


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    params: dict
    source: str = ""
    citation: str = ""

    @property
    def hash(self) -> str:
        return config_digest(self.params)

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    def section(self, name: str) -> dict:
        return self.params.get(name, {})

    def get(self, dotted: str, default=None):
        node = self.params
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def with_overrides(self, overrides: dict) -> "Protocol":
        """A derived protocol with ``{"section.key": value}`` applied (None values ignored)."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        changed = {k: v for k, v in overrides.items() if self.get(k, object()) != v}
        if not changed:
            return self
        params = copy.deepcopy(self.params)
        for dotted, value in changed.items():
            node = params
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        suffix = ",".join(f"{k}={v}" for k, v in sorted(changed.items()))
        return Protocol(f"{self.name}+{suffix}", self.description, params, self.source, self.citation)

    def to_dict(self) -> dict:
        return {"name": self.name, "hash": self.hash, "description": self.description,
                "source": self.source, "params": self.params}


def _parse(path: Path) -> Protocol:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"unreadable protocol file ({exc})", path) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"invalid TOML ({exc})", path) from None
    if "name" not in data:
        raise UserError("protocol file has no 'name'", path)
    params = {k: v for k, v in data.items() if k not in NON_PARAMETER_KEYS}
    return Protocol(data["name"], data.get("description", ""), params, str(path), data.get("citation", ""))


def available_protocols() -> dict[str, Protocol]:
    out = {}
    for path in sorted(protocols_dir().glob("*.toml")):
        p = _parse(path)
        out[p.name] = p
    return out


def load_protocol(name_or_path) -> Protocol:
    """A protocol by name (from ``protocols/``) or by path to a TOML file."""
    if isinstance(name_or_path, Protocol):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise UserError("no such protocol file", path)
        return _parse(path)
    known = available_protocols()
    if text not in known:
        raise UserError(f"unknown protocol '{text}' (known: {', '.join(sorted(known))})")
    return known[text]
