"""Paper tables: systems x metrics as a LaTeX booktabs table and as CSV (`report --latex`,
`leaderboard --latex`).

Each cell is the mean with its percentile CI (eval results) or +/- the sample std when the
result has no interval, in the metric's display unit (results/units.py: fractions and ratios
in %, the unit named once in the column head); the best value of each column is bold (the
metric's direction decides); rows transcribed from a paper are marked with a dagger and the
table says so. The CSV holds the same cells, one row per system x metric, with the numbers as
the table prints them.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from .units import display_unit, format_value, scale

CSV_COLUMNS = ["table", "system", "kind", "metric", "unit", "value", "ci_low", "ci_high", "std", "best"]
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text) -> str:
    """Plain text for LaTeX: every special character escaped, control characters dropped."""
    text = re.sub(r"[\x00-\x1f\x7f]", " ", str(text))
    return "".join(_SPECIAL.get(c, c) for c in text)


@dataclass
class Cell:
    value: float
    unit: str
    low: float | None = None
    high: float | None = None
    std: float | None = None


@dataclass
class PaperTable:
    """One table: rows (system, kind) x metric columns; comparable only within itself."""
    title: str
    metrics: list
    higher_is_better: dict
    units: dict
    rows: list = field(default_factory=list)  # (system, kind)
    ci_level: float | None = None  # of the intervals in brackets
    cells: dict = field(default_factory=dict)  # (system, kind, metric) -> Cell

    def best(self, metric: str) -> float | None:
        vals = [c.value for (s, k, m), c in self.cells.items() if m == metric]
        if len(vals) < 2:
            return None  # a column of one is nobody's best
        return max(vals) if self.higher_is_better.get(metric, True) else min(vals)


def from_results(docs: list, labels: list, *, title: str = "") -> PaperTable:
    """A table of eval results (JSON documents), one row per result, every metric they hold."""
    metrics = list(dict.fromkeys(m for d in docs for m, a in d["aggregate"].items() if isinstance(a, dict)))
    t = PaperTable(title=title, metrics=metrics, higher_is_better={}, units={})
    for doc, name in zip(docs, labels):
        t.rows.append((name, "measured"))
        for m in metrics:
            a = doc["aggregate"].get(m)
            if not isinstance(a, dict) or scale(a.get("value"), "score") is None:
                continue
            unit = a.get("unit", "fraction")
            t.units.setdefault(m, unit)
            t.higher_is_better.setdefault(m, bool(a.get("higher_is_better", True)))
            ci = a.get("ci") if isinstance(a.get("ci"), dict) else {}
            pct = ci.get("percentile") or [None, None]
            if ci.get("level"):
                t.ci_level = ci["level"]
            t.cells[(name, "measured", m)] = Cell(float(a["value"]), unit, pct[0], pct[1], a.get("std"))
    return t


def from_leaderboard(rows: list) -> list:
    """One table per protocol hash x comparable key of leaderboard rows (reported and measured)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["protocol"], r["protocol_hash"], r.get("comparable_key") or ""), []).append(r)
    out = []
    for (name, h, key), rs in groups.items():
        title = name if h == name else f"{name} ({h[:12]})"
        t = PaperTable(title=title + (f", {key}" if key else ""), metrics=list(dict.fromkeys(r["metric"] for r in rs)),
                       higher_is_better={}, units={})
        for r in rs:
            row = (r["system"], r["kind"])
            if row not in t.rows:
                t.rows.append(row)
            unit = r.get("unit") or "score"
            t.units.setdefault(r["metric"], unit)
            t.higher_is_better.setdefault(r["metric"], r.get("higher_is_better") not in (False, "False"))
            t.cells[(r["system"], r["kind"], r["metric"])] = Cell(float(r["value"]), unit)
        out.append(t)
    return out


def _cell_text(c: Cell) -> tuple:
    """(value, interval or spread) as displayed, without the unit (it is in the column head)."""
    v = format_value(c.value, c.unit, suffix=False)
    if c.low is not None and c.high is not None:
        return v, f"[{format_value(c.low, c.unit, suffix=False)}, {format_value(c.high, c.unit, suffix=False)}]"
    if isinstance(c.std, (int, float)):
        return v, "\u00b1 " + format_value(c.std, c.unit, suffix=False)
    return v, ""


def _head(metric: str, unit: str, hib: bool) -> str:
    shown = display_unit(unit)
    arrow = r"$\uparrow$" if hib else r"$\downarrow$"
    return tex_escape(metric) + (f" ({tex_escape(shown)})" if shown else "") + " " + arrow


def to_latex(tables: list, *, caption: str = "", label: str = "tab:d2m-bench") -> str:
    """The tables as LaTeX (needs \\usepackage{booktabs}): one tabular per table, in one table float."""
    tables = [tables] if isinstance(tables, PaperTable) else tables
    lines = [r"% written by d2m-bench; needs \usepackage{booktabs}", r"\begin{table}[t]", r"\centering", r"\small"]
    reported = any(k == "reported" for t in tables for _, k in t.rows)
    ci_levels = {t.ci_level for t in tables if t.ci_level}
    has_ci = False
    for i, t in enumerate(tables):
        if i:
            lines.append(r"\medskip")
        if len(tables) > 1 and t.title:
            lines.append(r"\par\textit{" + tex_escape(t.title) + r"}\par\smallskip")
        lines.append(r"\begin{tabular}{l" + "c" * len(t.metrics) + "}")
        lines.append(r"\toprule")
        lines.append("System & " + " & ".join(_head(m, t.units.get(m, "score"), t.higher_is_better.get(m, True))
                                              for m in t.metrics) + r" \\")
        lines.append(r"\midrule")
        for system, kind in t.rows:
            name = tex_escape(system) + (r"$^\dagger$" if kind == "reported" else "")
            cells = []
            for m in t.metrics:
                c = t.cells.get((system, kind, m))
                if c is None:
                    cells.append("--")
                    continue
                v, spread = _cell_text(c)
                if c.low is not None:
                    has_ci = True
                if c.value == t.best(m):
                    v = r"\textbf{" + v + "}"
                cells.append(v + (r" {\scriptsize " + tex_escape(spread).replace("\u00b1", r"$\pm$") + "}"
                                  if spread else ""))
            lines.append(name + " & " + " & ".join(cells) + r" \\")
        lines.append(r"\bottomrule")
        lines.append(r"\end{tabular}")
    notes = ["Best per column in bold", r"$\uparrow$/$\downarrow$: higher/lower is better"]
    if has_ci:
        level = f"{100 * ci_levels.pop():g}\\% " if len(ci_levels) == 1 else ""
        notes.append(f"brackets: {level}percentile bootstrap CI over clips")
    if reported:
        notes.append(r"$^\dagger$ reported in the paper; other rows measured with d2m-bench")
    text = caption.strip() + (" " if caption.strip() else "")
    lines.append(r"\caption{" + tex_escape(text) + "; ".join(notes) + ".}")
    lines.append(r"\label{" + tex_escape(label) + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(tables: list) -> str:
    """The same cells as CSV: numbers as the LaTeX table prints them, the display unit named."""
    tables = [tables] if isinstance(tables, PaperTable) else tables
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for t in tables:
        for system, kind in t.rows:
            for m in t.metrics:
                c = t.cells.get((system, kind, m))
                if c is None:
                    continue
                f = lambda v: "" if v is None else format_value(v, c.unit, suffix=False)  # noqa: E731
                w.writerow({"table": t.title, "system": system, "kind": kind, "metric": m,
                            "unit": display_unit(c.unit), "value": f(c.value), "ci_low": f(c.low), "ci_high": f(c.high),
                            "std": f(c.std) if c.low is None else "", "best": int(c.value == t.best(m))})
    return buf.getvalue()


def write_tables(tables: list, path, *, caption: str = "") -> list:
    """PATH (LaTeX) and PATH with .csv (the same cells); returns both paths."""
    from pathlib import Path

    from ..io.atomic import write_text

    path = Path(path)
    csv_path = path.with_suffix(".csv")
    write_text(path, to_latex(tables, caption=caption))
    write_text(csv_path, to_csv(tables))
    return [path, csv_path]


def csv_path_for(path):
    from pathlib import Path

    return Path(path).with_suffix(".csv")
