"""`d2m-bench report`: one static folder (index.html, img/, audio/) from eval results and MOS
aggregates. Nothing on the page loads from the network: styles and the small sorting script
are inline, summary figures are inline SVG, per-clip figures PNG files beside the page, and
the audio of the clips shown is copied in.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from markupsafe import Markup

from .. import __version__
from ..io.atomic import write_text
from ..errors import UserError
from ..io.nofollow import write_own_file
from ..io.outputs import check_output_folder
from . import specs as sp
from .scored import scored_file
from ..results.schema import check_result
from .templates import figure_html, render, trusted_svg
from ..results.units import format_difference, format_interval, format_value
from .paper_figures import png_html as _png, systems_html, systems_specs as _systems_specs, vector_path as _vector
from ..io.text import one_line, plain
from .figures import draw_all

MARKER = ".d2m-bench-report"  # a folder holding this file was written by `report`: it may be rewritten

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}h3{margin-top:1.5em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f3f3f3;cursor:pointer}td.l,th.l{text-align:left}.note{color:#666;font-size:.85em}
figure{margin:1em 0;border:1px solid #eee;padding:.5em}figcaption{font-size:.85em;color:#444}
figure svg{max-width:100%;height:auto}figure img{max-width:100%}
.audio{display:flex;gap:1em;align-items:center;font-size:.85em}.sig{font-weight:bold}
.better{background:#e3f3e3}.worse{background:#f8e1e1}nav a{margin-right:1em}
"""

SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
 var table=th.closest('table'),body=table.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
 var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
 var rows=Array.prototype.slice.call(body.rows);
 rows.sort(function(a,b){var x=a.cells[i].dataset.v||a.cells[i].textContent,y=b.cells[i].dataset.v||b.cells[i].textContent;
  var nx=parseFloat(x),ny=parseFloat(y);var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c;});
 rows.forEach(function(r){body.appendChild(r);});});});
"""

AUDIO_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg",
               ".m4a": "audio/mp4", ".aac": "audio/aac", ".opus": "audio/ogg"}


def fmt(v, unit="fraction") -> str:
    return format_value(v, unit)  # the one unit rule (results/units.py)


def ci_text(ci, unit, key="percentile") -> str:
    if not isinstance(ci, dict) or not ci.get(key):
        return "-"
    lo, hi = ci[key]
    return f"[{fmt(lo, unit)}, {fmt(hi, unit)}]"


# ------------------------------------------------------------------ inputs

def load_inputs(paths) -> tuple[list, list]:
    """(eval results, MOS aggregates) from JSON files, told apart by their content."""
    evals, mos = [], []
    for p in paths:
        p = Path(p)
        if p.is_dir() and (p / "mos.json").is_file():
            p = p / "mos.json"
        try:
            doc = json.loads(p.read_text())
        except FileNotFoundError:
            raise UserError("no such file", p) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"not a readable JSON file ({exc.__class__.__name__})", p) from None
        if isinstance(doc, dict) and isinstance(doc.get("systems"), list) and isinstance(doc.get("screening"), dict):
            doc["_path"] = str(p)
            mos.append(doc)
        elif isinstance(doc, dict) and ("aggregate" in doc or "per_clip" in doc):
            check_result(doc, p)  # an eval result in any shape: its fields are checked, not its looks
            doc["_path"] = str(p)
            doc.setdefault("protocol", {})
            evals.append(doc)
        else:
            raise UserError("neither a d2m-bench eval result nor a `mos aggregate` output (mos.json)", p)
    return evals, mos


def prepare_out(out: Path) -> None:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("--out must be a folder", out)
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise UserError("folder exists and was not written by `d2m-bench report`; give an empty or new folder", out)
    for sub in ("img", "audio", MARKER):
        if (out / sub).is_symlink():  # planted: rmtree and writes would reach what it points to
            raise UserError(f"refusing a link in the report folder ({sub} -> {os.readlink(out / sub)!r:.120}); "
                            "remove it", out)
    for sub in ("img", "audio"):  # our own figures and copies from an earlier report
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
    (out / "img").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(exist_ok=True)
    write_own_file(out / MARKER, "written by d2m-bench report; the folder may be rewritten by it\n",
                   what="report marker")


def label(doc) -> str:
    return plain(doc.get("system") or Path(doc["_path"]).stem)


def primary_metric(doc) -> str | None:
    for name in ("beats_hit", "loris_hit", "onset_f_measure", "beat_f_measure"):
        if name in doc["aggregate"] and sp.per_clip_scores(doc, name)[1]:
            return name
    return next((m for m in doc["aggregate"] if sp.per_clip_scores(doc, m)[1]), None)


# ------------------------------------------------------------------ page parts
# Each part is a Jinja2 template rendered with autoescaping (templates.render): values from
# result files never reach the page unescaped, in text or in attributes.

def _num(v):
    """A finite number for a data-v attribute (sorting), else ''."""
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else ""


_AGGREGATE = """<table class="sortable aggregates"><thead><tr><th class="l">metric</th><th>mean</th>\
<th>CI (percentile)</th><th>CI (BCa)</th><th>std</th><th>pooled</th><th>n</th><th class="l">better</th>\
<th class="l">notes</th></tr></thead><tbody>
{%- for r in rows %}<tr><td class="l">{{ r.name }}</td><td data-v="{{ r.v }}">{{ r.value }}</td><td>{{ r.ci }}</td>\
<td>{{ r.bca }}</td><td>{{ r.std }}</td><td>{{ r.pooled }}</td><td>{{ r.n }}</td><td class="l">{{ r.better }}</td>\
<td class="l">{{ r.extra }}</td></tr>{% endfor -%}
</tbody></table><p class="note">{{ note }}</p>"""


def aggregate_table(doc) -> Markup:
    rows = []
    for name, m in doc["aggregate"].items():
        if not isinstance(m, dict):
            continue
        unit = m.get("unit", "fraction")
        ci = m.get("ci")
        inf = m.get("fad_inf")
        if isinstance(inf, dict):
            extra = f"FAD-inf {fmt(inf.get('value'), unit)} (r² {fmt(inf.get('r2'), 'score')})"
        else:
            extra = m.get("ci_note") or ""
        rows.append({"name": name, "v": _num(m.get("value")), "value": fmt(m.get("value"), unit),
                     "ci": ci_text(ci, unit), "bca": ci_text(ci, unit, "bca"), "std": fmt(m.get("std"), unit),
                     "pooled": fmt(m.get("pooled"), unit), "n": "" if m.get("n") is None else m.get("n"),
                     "better": "higher" if m.get("higher_is_better", True) else "lower", "extra": extra})
    seeds = {(c.get("level"), c.get("n_resamples"), c.get("seed")) for m in doc["aggregate"].values()
             if isinstance(m, dict) and isinstance(c := m.get("ci"), dict)}
    note = "; ".join(f"{int(round(100 * lv))}% bootstrap over clips, {n} resamples, seed {s}" for lv, n, s in sorted(seeds, key=str))
    return render(_AGGREGATE, rows=rows, note=note or "no intervals in this result")


def _copy_audio(src: Path, out: Path, name: str) -> str:
    dest = out / "audio" / (name + src.suffix.lower())
    shutil.copyfile(src, dest)
    return f"audio/{dest.name}"


_AUDIO = """<div class="audio">{% for p in parts %}{% if p.rel %}<label>{{ p.what }} <audio controls \
preload="metadata" src="{{ p.rel }}" data-side="{{ p.side }}"{% if p.mime %} type="{{ p.mime }}"{% endif %}>\
</audio></label>{% else %}<span class="note">{{ p.what }}: not copied ({{ p.why }})</span>{% endif %}\
{% endfor %}</div>"""


def audio_html(doc, row, out, name) -> Markup:
    parts = []
    for side, what in (("gt", "ground truth"), ("pred", "generated")):
        src, why = scored_file(doc, row, side)
        if src is None:
            parts.append({"what": what, "why": why, "rel": None})
            sys.stderr.write(one_line(f"d2m-bench: warning: {doc['_path']}: clip {row.get('id')!s:.80} {side} "
                                      f"{row.get(side)!s:.200} left out of the report: {why}") + "\n")
            continue
        rel = _copy_audio(src, out, f"{name}-{side}")
        parts.append({"what": what, "rel": rel, "side": side, "mime": AUDIO_TYPES.get(Path(rel).suffix, "")})
    return render(_AUDIO, parts=parts)


_MOS = """<h2 id="{{ fig_id }}-sec">MOS: {{ name }}</h2><p>protocol {{ proto_name }} ({{ proto_hash }})</p>\
<p class="screening">{{ summary }}</p>{% if dropped %}<ul>{% for r in dropped %}<li>{{ r.rater }}: {{ r.reasons }}</li>\
{% endfor %}</ul>{% endif %}{{ fig }}<table class="sortable mos"><thead><tr><th class="l">aspect</th>\
<th class="l">system</th><th>MOS</th><th>CI (t)</th><th>CI (bootstrap)</th><th>ratings</th><th>raters</th><th>items</th>\
</tr></thead><tbody>{% for r in rows %}<tr><td class="l">{{ r.aspect }}</td><td class="l">{{ r.system }}\
{% if r.ref %} *{% endif %}</td><td>{{ r.mean }}</td><td>[{{ r.t_lo }}, {{ r.t_hi }}]</td><td>[{{ r.b_lo }}, \
{{ r.b_hi }}]</td><td>{{ r.n_ratings }}</td><td>{{ r.n_raters }}</td><td>{{ r.n_items }}</td></tr>{% endfor %}\
</tbody></table>{% if sig %}<p>significant differences (Holm):</p><ul>{% for p in sig %}<li>{{ p.aspect }}: \
{{ p.a }} vs {{ p.b }} (p_holm {{ p.p }}, {{ p.test }})</li>{% endfor %}</ul>{% else %}<p class="note">no pair \
of systems differs significantly after Holm correction</p>{% endif %}"""


def _text(v) -> str:
    return "" if v is None else str(v)


def mos_html(doc, fig_id, svg) -> Markup:
    s = (doc.get("screening") or {}).get("summary") or {}
    proto = doc.get("protocol") or {}
    rows = [{"aspect": _text(r.get("aspect")), "system": _text(r.get("system")), "ref": bool(r.get("is_reference")),
             "mean": fmt(r.get("mean"), "score"), "t_lo": fmt(r.get("ci_t_low"), "score"),
             "t_hi": fmt(r.get("ci_t_high"), "score"), "b_lo": fmt(r.get("ci_boot_low"), "score"),
             "b_hi": fmt(r.get("ci_boot_high"), "score"), "n_ratings": _text(r.get("n_ratings")),
             "n_raters": _text(r.get("n_raters")), "n_items": _text(r.get("n_items"))}
            for r in doc["systems"] if isinstance(r, dict)]
    dropped = [{"rater": _text(r.get("rater")), "reasons": "; ".join(map(str, r.get("reasons") or []))}
               for r in (doc.get("screening") or {}).get("raters") or [] if isinstance(r, dict) and not r.get("kept")]
    summary = (f"raters kept {_text(s.get('raters_kept'))}/{_text(s.get('raters'))}, ratings kept "
               f"{_text(s.get('ratings_kept'))}/{_text(s.get('ratings'))} (check ratings {_text(s.get('check_ratings'))}, "
               f"incomplete {_text(s.get('ratings_dropped_incomplete'))}, outliers {_text(s.get('ratings_dropped_outlier'))})")
    sig = [{"aspect": _text(p.get("aspect")), "a": _text(p.get("system_a")), "b": _text(p.get("system_b")),
            "p": fmt(p.get("p_holm"), "score"), "test": _text(p.get("test"))}
           for p in doc.get("pairwise") or [] if isinstance(p, dict) and p.get("significant")]
    spec = sp.mos_spec(doc, fig_id)
    fig = figure_html(spec, trusted_svg(svg), "MOS per system (dot), t interval (blue) and two-way bootstrap "
                                              "interval (gold) per aspect") if spec and svg else ""
    return render(_MOS, fig_id=fig_id, name=Path(doc["_path"]).name, proto_name=_text(proto.get("name")),
                  proto_hash=str(proto.get("hash", ""))[:12], summary=summary, dropped=dropped, fig=fig, rows=rows,
                  sig=sig)


_SIDE = """<h2 id="side-by-side">Side by side</h2><table class="sortable side"><thead><tr><th class="l">metric</th>\
{% for n in names %}<th>{{ n }}</th>{% endfor %}</tr></thead><tbody>{% for m, cells in body %}<tr>\
<td class="l">{{ m }}</td>{% for c in cells %}{% if c is none %}<td>-</td>{% else %}<td data-v="{{ c.v }}">\
{{ c.value }} <span class="note">{{ c.ci }}</span></td>{% endif %}{% endfor %}</tr>{% endfor %}</tbody></table>"""

_NOT_COMPARED = '<h2 id="compare">Paired comparison</h2><p class="note">not compared: {{ why }}</p>'

_COMPARE = """<h2 id="compare">Paired comparison</h2><ul>{% for p in pairing %}<li>{{ p.system_a }} vs \
{{ p.system_b }}: {{ p.common }} common clips{% if p.only_a %}; only in {{ p.system_a }}: {{ p.only_a | length }}\
{% endif %}{% if p.only_b %}; only in {{ p.system_b }}: {{ p.only_b | length }}{% endif %}</li>{% endfor %}</ul>\
<p class="note">B - A per clip; {{ level }}% paired bootstrap CI ({{ ci.n_resamples }} resamples, seed {{ ci.seed }}); \
Wilcoxon signed-rank, Holm over {{ rows | length }} tests; r = matched-pairs rank-biserial. Green: B significantly \
better, red: significantly worse.</p><table class="sortable compare"><thead><tr><th class="l">metric</th>\
<th class="l">A</th><th class="l">B</th><th>n</th><th>B - A</th><th>CI</th><th>p</th><th>p (Holm)</th><th>r</th>\
<th class="l">better</th></tr></thead><tbody>{% for r in rows %}<tr class="{{ r.cls }}"><td class="l">{{ r.metric }}\
</td><td class="l">{{ r.system_a }}</td><td class="l">{{ r.system_b }}</td><td>{{ r.n }}</td>\
<td data-v="{{ r.difference }}">{{ r.difference_text }}</td><td>{{ r.ci_text }}</td><td>{{ "%.3g" | format(r.p) }}</td><td class="{{ "sig" if r.significant \
else "" }}">{{ "%.3g" | format(r.p_holm) }}</td><td>{{ "%+.2f" | format(r.rank_biserial) }}</td>\
<td class="l">{{ r.better }}</td></tr>{% endfor %}</tbody></table>"""


def multi_html(evals) -> Markup:
    """Side-by-side aggregates and, when the results are comparable, the compare matrix."""
    names = [label(d) for d in evals]
    metrics = list(dict.fromkeys(m for d in evals for m in d["aggregate"]))
    body = []
    for m in metrics:
        cells = []
        for d in evals:
            a = d["aggregate"].get(m)
            if not isinstance(a, dict):
                cells.append(None)
                continue
            unit = a.get("unit", "fraction")
            cells.append({"v": _num(a.get("value")), "value": fmt(a.get("value"), unit), "ci": ci_text(a.get("ci"), unit)})
        body.append((m, cells))
    out = render(_SIDE, names=names, body=body)
    from ..results.compare import compare

    try:
        doc = compare([dict(d) for d in evals])
    except UserError as exc:
        return out + render(_NOT_COMPARED, why=str(exc))
    rows = [{**r, "cls": "" if not r["significant"] else ("better" if r["better"] == r["system_b"] else "worse"),
             "difference_text": format_difference(r["difference"], r.get("unit")),
             "ci_text": format_interval(r["ci_low"], r["ci_high"], r.get("unit"), difference=True)}
            for r in doc["comparisons"]]
    ci = doc["ci"]
    return (out + _matrix_html(doc, [r["system"] for r in doc["results"]])
            + render(_COMPARE, pairing=doc["pairing"], level=int(round(100 * ci["level"])), ci=ci, rows=rows))


_MATRIX = """<h2 id="compare-matrix">Compare matrix</h2><p class="note">Cell (row R, column C): mean per-clip \
difference C - R; bold = significant after Holm; green = C better, red = C worse.</p>{% for metric, grid in tables %}\
<table class="matrix" data-metric="{{ metric }}"><caption>{{ metric }}</caption><thead><tr><th></th>\
{% for n in names %}<th>{{ n }}</th>{% endfor %}</tr></thead><tbody>{% for a, tds in grid %}<tr>\
<th class="l">{{ a }}</th>{% for t in tds %}{% if t is none %}<td>-</td>{% else %}<td class="{{ t.cls }}" \
data-v="{{ t.d }}" title="p_holm {{ "%.3g" | format(t.p_holm) }}">{% if t.sig %}<b>{{ t.text }}</b>\
{% else %}{{ t.text }}{% endif %}</td>{% endif %}{% endfor %}</tr>{% endfor %}</tbody></table>\
{% endfor %}"""


def _matrix_html(doc, names) -> Markup:
    """Per metric, a systems x systems grid: cell (row R, column C) = mean of C - R per clip, bold
    where Holm-significant; green where the column system is the better one."""
    by_metric: dict = {}
    for r in doc["comparisons"]:
        by_metric.setdefault(r["metric"], {})[(r["system_a"], r["system_b"])] = r
    if not by_metric:
        return Markup("")
    tables = []
    for metric, cells in by_metric.items():
        grid = []
        for a in names:
            tds = []
            for b in names:
                r, sign = cells.get((a, b)), 1
                if r is None and (b, a) in cells:
                    r, sign = cells[(b, a)], -1
                if r is None:
                    tds.append(None)
                    continue
                tds.append({"d": sign * r["difference"], "sig": r["significant"], "p_holm": r["p_holm"],
                            "text": format_difference(sign * r["difference"], r.get("unit")),
                            "cls": "" if not r["significant"] else ("better" if r["better"] == b else "worse")})
            grid.append((a, tds))
        tables.append((metric, grid))
    return render(_MATRIX, tables=tables, names=names)


# ------------------------------------------------------------------ build

def build_report(inputs, out, *, clips=(), worst=5, best=5, random=5, seed=0, envelopes=False,
                 workers=2, progress=False) -> Path:
    """Write the report folder; returns the path of index.html."""
    evals, mos = load_inputs(inputs)
    if not evals and not mos:
        raise UserError("give at least one eval result or mos.json")
    out = Path(out)
    # An earlier report's img/ and audio/ are deleted: none of the inputs or clips may live there.
    clip_audio = [r[k] for d in evals for r in d["per_clip"] if isinstance(r, dict)
                  for k in ("gt", "pred") if isinstance(r.get(k), str) and r[k]]
    check_output_folder("--out", out, {"INPUTS": [Path(p) for p in inputs], "clip audio": clip_audio},
                        claims=("index.html", "report.html", "img", "audio", MARKER))
    prepare_out(out)
    jobs, plan = [], []  # plan: what goes where on the page, filled once the figures are drawn
    for k, doc in enumerate(evals):
        rid = f"r{k}"
        entry = {"doc": doc, "rid": rid, "dist": [], "genre": None, "clips": []}
        for j, metric in enumerate(doc["aggregate"]):
            spec = sp.distribution_spec(doc, metric, f"{rid}-dist-{j}")
            if spec:
                jobs.append((spec, _vector(out, spec)))
                entry["dist"].append(spec["id"])
        entry["fad"] = []
        for j, metric in enumerate(m for m in doc["aggregate"] if m.startswith("fad")):
            spec = sp.fad_spec(doc, metric, f"{rid}-fad-{j}")
            if spec:
                jobs.append((spec, _vector(out, spec)))
                entry["fad"].append(spec["id"])
        g = sp.genre_spec(doc, f"{rid}-genre")
        if g:
            jobs.append((g, _vector(out, g)))
            entry["genre"] = g["id"]
        rows = {str(r.get("id")): r for r in doc["per_clip"]}
        missing = [c for c in clips if c not in rows]
        if missing and len(evals) == 1:
            raise UserError(f"--clips: no clip with id {', '.join(missing[:5])} in this result", doc["_path"])
        params = doc["protocol"].get("params") or {}
        audio = params.get("audio") or {}
        hop = ((params.get("beats") or {}).get("onset") or {}).get("hop_length", 512)
        for i, (cid, why) in enumerate(sp.select_clips(doc, primary_metric(doc), worst=worst, best=best,
                                                       random=random, seed=seed, chosen=clips)):
            row = rows[cid]
            bs = sp.beat_spec(doc, row, f"{rid}-clip-{i}", why)
            if envelopes and row.get("gt") and row.get("pred"):
                bs["envelope_request"] = {"gt": row["gt"], "pred": row["pred"], "sr": audio.get("sample_rate", 22050),
                                          "mono": audio.get("mono", "mean"), "resample": audio.get("resample", "soxr_hq"),
                                          "hop": hop, "gt_samples": row.get("gt_samples"),
                                          "pred_samples": row.get("pred_samples")}
            jobs.append((bs, str(out / "img" / f"{bs['id']}.png")))
            al = sp.alignment_spec(doc, row, f"{rid}-align-{i}", why)
            if al:
                jobs.append((al, str(out / "img" / f"{al['id']}.png")))
            entry["clips"].append((cid, row, bs["id"], al["id"] if al else None))
        plan.append(entry)
    for k, doc in enumerate(mos):
        spec = sp.mos_spec(doc, f"m{k}-mos")
        if spec:
            jobs.append((spec, _vector(out, spec)))
    systems = _systems_specs(evals) if len(evals) > 1 else []
    jobs += [(spec, _vector(out, spec)) for spec in systems]
    drawn = {spec["id"]: (spec, svg) for spec, svg in draw_all(jobs, workers=workers)}
    sections = [_result_html(e, drawn, out) for e in plan]
    sections += [mos_html(doc, f"m{k}-mos", drawn.get(f"m{k}-mos", (None, None))[1]) for k, doc in enumerate(mos)]
    if systems:
        sections.append(systems_html(systems, drawn))
    if len(evals) > 1:
        sections.append(multi_html(evals))
    page = render(_PAGE, css=Markup(CSS), js=Markup(SORT_JS), version=__version__,
                  written=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  inputs=", ".join(d["_path"] for d in evals + mos),
                  nav=[(e["rid"], label(e["doc"])) for e in plan], n_mos=len(mos), multi=len(evals) > 1,
                  systems=bool(systems),
                  sections=sections)
    index = out / "index.html"
    write_text(index, page + "\n")
    return index


_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>d2m-bench report</title>\
<style>{{ css }}</style></head><body><h1>d2m-bench report</h1><p class="note">d2m-bench {{ version }}, written \
{{ written }}; inputs: {{ inputs }}. How to read each figure: docs/report.md.</p><nav>{% for rid, name in nav %}\
<a href="#{{ rid }}">{{ name }}</a>{% endfor %}{% for k in range(n_mos) %}<a href="#m{{ k }}-mos-sec">MOS {{ k + 1 }}\
</a>{% endfor %}{% if systems %}<a href="#systems">systems</a>{% endif %}{% if multi %}\
<a href="#side-by-side">side by side</a><a href="#compare">compare</a>{% endif %}</nav>\
{% for part in sections %}{{ part }}{% endfor %}<script>{{ js }}</script></body></html>"""

_RESULT = """<h2 id="{{ rid }}">{{ name }}</h2><p>{{ file }}: protocol {{ proto_name }} ({{ proto_hash }}), \
{{ n_pairs }} pairs, {{ n_excluded }} excluded</p>{{ aggregates }}{% if gt_set %}<p class="note">gt set: \
{{ gt_set }}</p>{% endif %}{% if flags %}<p class="note">flags: {{ flags }}</p>{% endif %}{% for w in warnings %}<p class="note">warning: \
{{ w }}</p>{% endfor %}{% for name, status, reason in sections %}<p class="note">[{{ name }}] {{ status }}: \
{{ reason }}</p>{% endfor %}{% for part in parts %}{{ part }}{% endfor %}"""


def _result_html(e, drawn, out) -> Markup:
    doc, rid = e["doc"], e["rid"]
    proto = doc.get("protocol") or {}
    excl = doc.get("excluded") or {}
    sections = [(name, _text(sec.get("status")), _text(sec.get("reason", "")))
                for name, sec in (doc.get("sections") or {}).items()
                if isinstance(sec, dict) and sec.get("status") not in (None, "ok")]
    parts = []
    if e["dist"]:
        parts.append(render("<h3>Per-clip distributions</h3>"))
        for fid in e["dist"]:
            spec, svg = drawn[fid]
            ci = f"; shaded: {int(round(100 * spec['ci_level']))}% percentile CI of the mean" if spec["ci_percentile"] else ""
            parts.append(figure_html(spec, trusted_svg(svg), f"{spec['metric']}: clips per value (left) and every "
                                                              f"clip as a dot (right); line: mean{ci}"))
    for fid in e.get("fad", []):
        spec, svg = drawn[fid]
        parts.append(render("<h3>FAD and FAD-inf</h3>") + figure_html(
            spec, trusted_svg(svg), "FAD of random subsets of N generated embeddings against 1/N (dots), the "
                                    "least-squares line and its intercept FAD-inf (diamond); the plain FAD of all "
                                    "embeddings with its bootstrap interval over clips (blue)"))
    if e["genre"]:
        spec, svg = drawn[e["genre"]]
        parts.append(render("<h3>Genre</h3>") + figure_html(
            spec, trusted_svg(svg), "confusion matrix (rows: dance genre, columns: genre retrieved for the generated "
                                    "clip; shade = share of the row) and per-genre accuracy with the ground-truth "
                                    "ceiling"))
    if e["clips"]:
        parts.append(render('<h3>Clips</h3><p class="note">Onsets of the ground truth (top) and the generated clip '
                            '(bottom) in 1-s bins, as Beats Coverage/Hit count them.</p>'))
        for i, (cid, row, bid, aid) in enumerate(e["clips"]):
            spec, _ = drawn[bid]
            note = f" {spec['envelope_note']}" if spec.get("envelope_note") else ""
            body = _png(bid, f"onsets of {cid}") + audio_html(doc, row, out, f"{rid}-{i}")
            parts.append(figure_html(spec, body, f"{cid} ({spec['why']}){note}"))
        aligned = [(cid, aid) for cid, _, _, aid in e["clips"] if aid]
        if aligned:
            parts.append(render('<h3>Alignment</h3><p class="note">Kinematic beats of the dance (FACT) against the '
                                'music beats of the generated and the ground-truth clip; grey: each kinematic beat '
                                'to its nearest generated music beat.</p>'))
            for cid, aid in aligned:
                spec, _ = drawn[aid]
                parts.append(figure_html(spec, _png(aid, f"beats of {cid}"), cid))
    gt_set = (doc.get("inputs") or {}).get("gt_set") if isinstance(doc.get("inputs"), dict) else None
    if isinstance(gt_set, dict):
        from ..results.gtset import title

        gt_set = title(gt_set)
    return render(_RESULT, rid=rid, name=label(doc), file=Path(doc["_path"]).name, proto_name=_text(proto.get("name")),
                  gt_set=_text(gt_set) if isinstance(gt_set, str) else "",
                  flags="; ".join(map(_text, doc.get("flags") or [])),
                  proto_hash=str(proto.get("hash", ""))[:12], n_pairs=len(doc["per_clip"]),
                  n_excluded=_text(excl.get("count", 0)), aggregates=aggregate_table(doc),
                  warnings=[_text(w) for w in doc.get("warnings") or []], sections=sections, parts=parts)
