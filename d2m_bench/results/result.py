"""Result objects: the JSON written by `d2m-bench eval`, the per-clip CSV, the terminal table."""
from __future__ import annotations

import csv
import json
import os
import platform
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..io.atomic import write_text
from .tables import format_table
from .units import format_interval, format_value, unit_of
from ..versions import package_versions

RESULT_SCHEMA = 1
_PACKAGES = ("numpy", "scipy", "librosa", "soundfile", "av", "soxr", "numba", "torch", "torchvggish", "mir_eval")


def library_versions() -> dict:
    """Installed versions, read from package metadata (nothing is imported)."""
    return {"python": platform.python_version(), **package_versions(_PACKAGES)}



def metric_summary(values, *, pooled=None, unit="fraction", higher_is_better=True, **extra) -> dict:
    """Macro mean with spread and the per-clip distribution of a list of per-clip scores.

    ``std`` is the sample standard deviation (ddof = 1, what LORIS prints); with one clip it
    is undefined and null, and ``std_note`` says so. ``std_population`` is ddof = 0.
    ``distribution`` (when at most 12 distinct values, as quantised 2-s scores are) lists
    ``{"value": v, "count": c}`` in increasing v, with v the exact per-clip number.
    """
    vals = [float(v) for v in values]
    n = len(vals)
    out = {"value": statistics.fmean(vals), "n": n,
           "std": statistics.stdev(vals) if n > 1 else None,
           "std_population": statistics.pstdev(vals),
           "median": statistics.median(vals), "min": min(vals), "max": max(vals),
           "unit": unit, "higher_is_better": higher_is_better}
    if n == 1:
        out["std_note"] = "null: the sample standard deviation (ddof=1) is undefined for one clip"
    if pooled is not None:
        out["pooled"] = pooled
    distinct = Counter(vals)
    if len(distinct) <= 12:  # quantised scores (2-s clips: 0, .5, 1, 2): show them all
        out["distribution"] = [{"value": v, "count": c} for v, c in sorted(distinct.items())]
    out.update(extra)
    return out


def embedder_key(meta: dict, layer: str | None = None) -> str:
    """Comparable key of an embedder from its ``meta()``: "" when it has no weights file,
    ``vggish:official`` for the published weights, else ``<embedder>:<sha256 first 12 hex>``;
    then the output ``layer`` when given (``vggish:official:pre_relu``); a PCA file used for
    post-processing is appended the same way."""
    sha = meta.get("weights_sha256")
    if not sha:
        return ""
    from ..embedders.weights import is_official  # full pinned sha256, never a prefix

    name = meta.get("embedder", "embedder")
    official = is_official(name, str(sha))
    key = f"{name}:{'official' if official else str(sha)[:12]}" + (f":{layer}" if layer else "")
    pca = meta.get("pca_sha256")
    if pca:
        official_pca = is_official("vggish-pca", str(pca))
        key += ":pca-" + ("official" if official_pca else str(pca)[:12])
    return key


@dataclass
class EvalResult:
    """What :func:`d2m_bench.evaluate` returns and ``d2m-bench eval`` writes.

    Attributes:
        protocol: The :class:`~d2m_bench.protocol.Protocol` used (with any overrides applied).
        system: The system name given, or None.
        pairing_rule: How gt and pred files were paired (``stem``, ``generation``, ``manifest``).
        inputs: The folders / manifest / dataset read.
        aggregate: Metric name -> summary: ``value`` (the dataset mean, the number papers
            report), ``n``, ``std``, ``median``, ``min``, ``max``, ``unit``,
            ``higher_is_better``, and where they apply ``pooled``, ``distribution``, ``ci``.
        excluded: Clips left out of a metric, each ``{"id", "reason"}`` (and ``section``).
        per_clip: One dict per scored pair: ids, paths, sample counts, per-clip metric values.
        sections: The optional sections run (``genre``, ``alignment``, ...) with their status.
        warnings: Notes the run produced (also in the JSON and under the table).
        created: UTC time of the run (ISO 8601).

    Examples:
        >>> result = d2m_bench.evaluate("demo/generated", "demo/gt")  # doctest: +SKIP
        >>> result.aggregate["beats_hit"]["value"]  # doctest: +SKIP
        >>> result.write_json("result.json")  # doctest: +SKIP
    """

    protocol: object  # d2m_bench.protocol.Protocol
    system: str | None
    pairing_rule: str
    inputs: dict
    aggregate: dict
    excluded: list
    per_clip: list
    sections: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def comparable_keys(self) -> dict:
        """metric -> comparable_key for metrics whose numbers depend on more than the protocol.

        Genre metrics depend on the embedder's weights file, which is not a protocol parameter;
        the key also names the layer each metric used (FAD and retrieval may differ).
        """
        keys = {}
        genre = self.sections.get("genre") or {}
        if genre.get("status") == "ok":
            meta = genre.get("meta") or {}
            keys = {name: embedder_key(meta, m.get("layer")) for name, m in genre.get("aggregate", {}).items()}
        for sec in self.sections.values():  # fd, kl, inception: each names its metrics' keys
            if isinstance(sec, dict) and sec.get("status") == "ok":
                keys.update(sec.get("comparable_keys") or {})
        return {name: key for name, key in keys.items() if key}

    def leaderboard_rows(self) -> list:
        """One leaderboard row per aggregate metric (system, protocol hash, comparable key, value)."""
        keys = self.comparable_keys()
        ranking = self.protocol.section("ranking")  # optional: a declared direction per metric
        return [{"system": self.system, "protocol": self.protocol.name, "protocol_hash": self.protocol.hash,
                 "metric": name, "comparable_key": keys.get(name, ""), "value": m["value"],
                 "unit": m.get("unit", "fraction"), "higher_is_better": m.get("higher_is_better", True),
                 "n": m.get("n"), **({"direction": ranking[name]} if name in ranking else {})}
                for name, m in self.aggregate.items()]

    def to_dict(self) -> dict:
        """The JSON document ``d2m-bench eval --out`` writes (``complete: true``, versions, inputs, ...)."""
        doc = {
            "schema": RESULT_SCHEMA, "complete": True, "tool": "d2m-bench", "version": __version__,
            "created": self.created, "system": self.system,
            "protocol": self.protocol.to_dict(), "versions": library_versions(),
            "inputs": dict(self.inputs, pairing_rule=self.pairing_rule, n_pairs=len(self.per_clip)),
            "aggregate": self.aggregate,
            "excluded": {"count": len(self.excluded), "clips": self.excluded},
            "sections": {k: {kk: vv for kk, vv in v.items() if kk not in ("per_clip", "aggregate")}
                         for k, v in self.sections.items()},
            "warnings": self.warnings,
            "leaderboard": self.leaderboard_rows() if self.system else [],
            "per_clip": self.per_clip,
        }
        from .flags import run_flags  # what the leaderboard shows beside this run's numbers

        doc["flags"] = run_flags(doc)
        return doc

    def write_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON (atomically; non-finite numbers are refused)."""
        write_text(Path(path), json.dumps(self.to_dict(), indent=2, allow_nan=False, default=str) + "\n")

    def write_csv(self, path: str | os.PathLike) -> None:
        """Write the per-clip table as CSV (scalar columns only), as ``d2m-bench eval --csv``."""
        cols = []
        for r in self.per_clip:
            cols += [k for k in r if k not in cols and not isinstance(r[k], (list, dict))]
        import io

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.per_clip)
        write_text(Path(path), buf.getvalue())

    def table(self) -> str:
        """The terminal summary ``d2m-bench eval`` prints: one aligned row per metric, then notes."""
        p = self.protocol
        lines = [f"protocol {p.name} ({p.short_hash})  pairs {len(self.per_clip)}  "
                 f"excluded {len(self.excluded)}  pairing {self.pairing_rule}"]
        if isinstance(self.inputs.get("gt_set"), dict):
            from .gtset import title

            lines.append(f"gt set: {title(self.inputs['gt_set'])}")
        rows = []
        for name, m in self.aggregate.items():
            unit = unit_of(m)

            def fmt(v):
                return format_value(v, unit)

            dist = " ".join(f"{fmt(d['value'])}:{d['count']}" for d in m.get("distribution", []))
            ci = m.get("ci") if isinstance(m.get("ci"), dict) else {}
            bounds = format_interval(*ci["percentile"], unit) if ci.get("percentile") else "-"
            rows.append([name, fmt(m["value"]), bounds, fmt(m.get("std")), fmt(m.get("pooled")), m.get("n", ""), dist])
        if rows:
            levels = {m["ci"].get("level") for m in self.aggregate.values() if isinstance(m.get("ci"), dict)}
            ci_head = f"{100 * levels.pop():g}% CI" if len(levels) == 1 else "CI"
            lines.append(format_table(rows, ["metric", "mean", ci_head, "std", "pooled", "n", "distribution"],
                                      align=["left", "right", "right", "right", "right", "right", "left"]))
        for name, sec in self.sections.items():
            if sec.get("status") != "ok":
                lines.append(f"[{name}] skipped: {sec.get('reason', '')}")
        for e in self.excluded[:10]:
            lines.append(f"excluded {e['id']}: {e['reason']}")
        if len(self.excluded) > 10:
            lines.append(f"... and {len(self.excluded) - 10} more excluded (see the JSON)")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)
