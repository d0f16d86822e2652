"""The metric families of ``d2m-bench eval``: one module per family, listed once in ``REGISTRY``.

Every section module has the same small interface (docs/development.md shows a worked example):

``NAME``
    The protocol table it reads, and its key in the result's ``sections``.
``DEFAULTS``
    The table's defaults (what an absent key means).
``validate(check, table)``
    Protocol validation of the table (``check``: the protocol checker, with ``fail``, ``keys``,
    ``choice``, ``number``, ``boolean``). Runs for every protocol, enabled or not, so a section
    module imports no metric code at its top: importing it must stay cheap.
``enabled(protocol) -> bool`` (optional)
    Whether this run scores the family; without it, the table's ``enabled = true`` decides.
``check(protocol, ctx)``
    Before any audio is decoded: raise the UserError the section would raise later (missing
    weights, unreadable labels or prompts), so that a run never fails after minutes of work.
``pair_step(protocol, ctx) -> dict`` and ``run_pair(pair, files, config) -> dict`` (optional)
    Work done per gt/pred pair inside eval's parallel worker pass, where each file is decoded
    once for every section (``d2m_bench.features.worker``): ``pair_step`` returns the picklable
    configuration that ``run_pair`` gets; ``files`` maps "gt" and "pred" to a shared
    ``FileSource``. ``ctx.pair_data[NAME]`` holds the outputs, one per pair, for ``score``.
``score(rows, protocol, ctx) -> Section``
    The family's metrics from the worker pass's rows and the run's context.

A family is added with one module and one line in ``REGISTRY``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import TypedDict

# Run order: beats first (its rows carry the per-clip lengths every later section sees), sanity
# last (its warnings close the result's list).
REGISTRY = ("beats", "genre", "alignment", "fd", "kid", "kl", "inception", "clap", "sanity")
TABLELESS = ("sanity",)  # families with no protocol table (always on, fixed thresholds)


class Section(TypedDict, total=False):
    """What ``score`` returns (and what a result's ``sections[NAME]`` holds)."""

    status: str  # "ok" or "skipped"
    reason: str  # why it was skipped
    meta: dict  # settings and counts that say how the numbers were made
    aggregate: dict  # metric name -> summary (``value``, ``n``, ``unit``, ...), merged into the result's aggregate
    per_clip: dict  # clip id -> columns, merged into the result's per-clip rows
    excluded: list  # [{"id", "reason"}]: clips this family could not score
    warnings: list  # lines added to the result's warnings
    comparable_keys: dict  # metric -> what changes its number outside the protocol (embedder weights)


@dataclass
class EvalContext:
    """What a section may read besides the protocol: the run's inputs and settings."""

    data: object = None  # d2m_bench.data.dataset.Dataset or None
    split: str = "test"
    options: dict = field(default_factory=dict)
    workers: int = 1
    cache: bool = True
    progress: bool = False
    pairs: list = field(default_factory=list)  # d2m_bench.io.pairing.Pair, in scoring order
    pair_data: dict = field(default_factory=dict)  # section name -> [run_pair output per pair]
    provenance: dict | None = None  # key fields of --pred's provenance.json (d2m_bench.io.provenance)


def section(name: str):
    """The section module ``name`` (imported on first use)."""
    if name not in REGISTRY:
        raise KeyError(f"no section '{name}' ({', '.join(REGISTRY)})")
    return import_module(f"{__name__}.{name}")


def is_enabled(mod, protocol) -> bool:
    """Whether section module ``mod`` runs under ``protocol``: its own ``enabled`` rule, else
    the table's ``enabled = true``."""
    rule = getattr(mod, "enabled", None)
    return rule(protocol) if rule is not None else bool(protocol.section(mod.NAME).get("enabled"))


def validate_table(check, name: str, table: dict, defaults: dict) -> bool:
    """The checks every section table shares: known keys, a boolean ``enabled``. Returns whether
    the table sets anything beyond ``enabled`` (an absent table means the defaults, which are
    valid by construction: nothing more to check and no backend module to import)."""
    check.keys(name, table, ("enabled", *defaults))
    if "enabled" in table:
        check.boolean(f"{name}.enabled", table["enabled"])
    return any(k != "enabled" for k in table)


def params(protocol, name: str, defaults: dict) -> dict:
    """A table over its defaults, without ``enabled``."""
    return {**defaults, **{k: v for k, v in protocol.section(name).items() if k != "enabled"}}
