"""`d2m-bench report`: one static folder (index.html, img/, audio/) from eval results and MOS
aggregates. Nothing on the page loads from the network: styles and the small sorting script
are inline, summary figures are inline SVG, per-clip figures PNG files beside the page, and
the audio of the clips shown is copied in.
"""
from __future__ import annotations

import html
import json
import math
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..io.atomic import write_text
from ..errors import UserError
from ..io.nofollow import write_own_file
from ..io.outputs import check_output_folder
from . import specs as sp
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


def esc(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def fmt(v, unit="fraction") -> str:
    if v is None or not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        return "-"
    return f"{100 * v:.1f}%" if unit in ("fraction", "ratio") else f"{v:.4g}"  # ratio: Beats Coverage, x100 as papers print


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
        elif isinstance(doc, dict) and isinstance(doc.get("aggregate"), dict) and isinstance(doc.get("per_clip"), list):
            if doc.get("complete") is not True:
                raise UserError("result is marked incomplete", p)
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
    return doc.get("system") or Path(doc["_path"]).stem


def primary_metric(doc) -> str | None:
    for name in ("beats_hit", "loris_hit", "onset_f_measure", "beat_f_measure"):
        if name in doc["aggregate"] and sp.per_clip_scores(doc, name)[1]:
            return name
    return next((m for m in doc["aggregate"] if sp.per_clip_scores(doc, m)[1]), None)


# ------------------------------------------------------------------ page parts

def figure_html(spec, body, caption) -> str:
    data = esc(json.dumps(spec, separators=(",", ":"), allow_nan=False))
    return (f'<figure id="{esc(spec["id"])}" class="fig fig-{spec["kind"]}" data-kind="{spec["kind"]}" '
            f'data-spec="{data}">{body}<figcaption>{caption}</figcaption></figure>')


def aggregate_table(doc) -> str:
    rows = []
    for name, m in doc["aggregate"].items():
        if not isinstance(m, dict):
            continue
        unit = m.get("unit", "fraction")
        ci = m.get("ci")
        extra = ""
        inf = m.get("fad_inf")
        if isinstance(inf, dict):
            extra = f"FAD-inf {fmt(inf.get('value'), unit)} (r² {fmt(inf.get('r2'), 'score')})"
        elif m.get("ci_note"):
            extra = esc(m["ci_note"])
        rows.append(f'<tr><td class="l">{esc(name)}</td><td data-v="{m.get("value")}">{fmt(m.get("value"), unit)}</td>'
                    f'<td>{ci_text(ci, unit)}</td><td>{ci_text(ci, unit, "bca")}</td>'
                    f'<td>{fmt(m.get("std"), unit)}</td><td>{fmt(m.get("pooled"), unit)}</td><td>{esc(m.get("n"))}</td>'
                    f'<td class="l">{"higher" if m.get("higher_is_better", True) else "lower"}</td>'
                    f'<td class="l">{extra}</td></tr>')
    seeds = {(c.get("level"), c.get("n_resamples"), c.get("seed")) for m in doc["aggregate"].values()
             if isinstance(m, dict) and isinstance(c := m.get("ci"), dict)}
    note = "; ".join(f"{int(round(100 * lv))}% bootstrap over clips, {n} resamples, seed {s}" for lv, n, s in sorted(seeds, key=str))
    return ('<table class="sortable aggregates"><thead><tr><th class="l">metric</th><th>mean</th><th>CI (percentile)</th>'
            '<th>CI (BCa)</th><th>std</th><th>pooled</th><th>n</th><th class="l">better</th><th class="l">notes</th></tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table><p class="note">{esc(note or "no intervals in this result")}</p>')


def _copy_audio(src, out: Path, name: str) -> str | None:
    src = Path(src) if src else None
    if src is None or not src.is_file():
        return None
    dest = out / "audio" / (name + src.suffix.lower())
    shutil.copyfile(src, dest)
    return f"audio/{dest.name}"


def audio_html(row, out, name) -> str:
    parts = []
    for side, what in (("gt", "ground truth"), ("pred", "generated")):
        rel = _copy_audio(row.get(side), out, f"{name}-{side}")
        if rel is None:
            parts.append(f'<span class="note">{what}: file not found ({esc(row.get(side))})</span>')
            continue
        mime = AUDIO_TYPES.get(Path(rel).suffix, "")
        parts.append(f'<label>{what} <audio controls preload="metadata" src="{esc(rel)}" '
                     f'data-side="{side}"{f" type={chr(34)}{mime}{chr(34)}" if mime else ""}></audio></label>')
    return f'<div class="audio">{"".join(parts)}</div>'


def mos_html(doc, fig_id, svg) -> str:
    s = (doc.get("screening") or {}).get("summary") or {}
    proto = doc.get("protocol") or {}
    rows = "".join(
        f'<tr><td class="l">{esc(r.get("aspect"))}</td><td class="l">{esc(r.get("system"))}{" *" if r.get("is_reference") else ""}</td>'
        f'<td>{fmt(r.get("mean"), "score")}</td><td>[{fmt(r.get("ci_t_low"), "score")}, {fmt(r.get("ci_t_high"), "score")}]</td>'
        f'<td>[{fmt(r.get("ci_boot_low"), "score")}, {fmt(r.get("ci_boot_high"), "score")}]</td>'
        f'<td>{esc(r.get("n_ratings"))}</td><td>{esc(r.get("n_raters"))}</td><td>{esc(r.get("n_items"))}</td></tr>'
        for r in doc["systems"] if isinstance(r, dict))
    dropped = [r for r in (doc.get("screening") or {}).get("raters") or [] if isinstance(r, dict) and not r.get("kept")]
    drop_html = "".join(f"<li>{esc(r.get('rater'))}: {esc('; '.join(map(str, r.get('reasons') or [])))}</li>" for r in dropped)
    summary = (f"raters kept {esc(s.get('raters_kept'))}/{esc(s.get('raters'))}, ratings kept "
               f"{esc(s.get('ratings_kept'))}/{esc(s.get('ratings'))} (check ratings {esc(s.get('check_ratings'))}, "
               f"incomplete {esc(s.get('ratings_dropped_incomplete'))}, outliers {esc(s.get('ratings_dropped_outlier'))})")
    sig = [p for p in doc.get("pairwise") or [] if isinstance(p, dict) and p.get("significant")]
    sig_html = "".join(f"<li>{esc(p.get('aspect'))}: {esc(p.get('system_a'))} vs {esc(p.get('system_b'))} "
                       f"(p_holm {fmt(p.get('p_holm'), 'score')}, {esc(p.get('test'))})</li>" for p in sig)
    spec = sp.mos_spec(doc, fig_id)
    fig = figure_html(spec, svg, "MOS per system (dot), t interval (blue) and two-way bootstrap interval (gold) "
                                 "per aspect") if spec and svg else ""
    return (f'<h2 id="{esc(fig_id)}-sec">MOS: {esc(Path(doc["_path"]).name)}</h2>'
            f'<p>protocol {esc(proto.get("name"))} ({esc(str(proto.get("hash", ""))[:12])})</p>'
            f'<p class="screening">{summary}</p>{"<ul>" + drop_html + "</ul>" if drop_html else ""}{fig}'
            '<table class="sortable mos"><thead><tr><th class="l">aspect</th><th class="l">system</th><th>MOS</th>'
            '<th>CI (t)</th><th>CI (bootstrap)</th><th>ratings</th><th>raters</th><th>items</th></tr></thead>'
            f'<tbody>{rows}</tbody></table>'
            + (f"<p>significant differences (Holm):</p><ul>{sig_html}</ul>" if sig_html else
               '<p class="note">no pair of systems differs significantly after Holm correction</p>'))


def multi_html(evals) -> str:
    """Side-by-side aggregates and, when the results are comparable, the compare matrix."""
    names = [label(d) for d in evals]
    metrics = list(dict.fromkeys(m for d in evals for m in d["aggregate"]))
    head = "".join(f"<th>{esc(n)}</th>" for n in names)
    body = []
    for m in metrics:
        cells = []
        for d in evals:
            a = d["aggregate"].get(m)
            if not isinstance(a, dict):
                cells.append("<td>-</td>")
                continue
            unit = a.get("unit", "fraction")
            cells.append(f'<td data-v="{a.get("value")}">{fmt(a.get("value"), unit)} '
                         f'<span class="note">{ci_text(a.get("ci"), unit)}</span></td>')
        body.append(f'<tr><td class="l">{esc(m)}</td>{"".join(cells)}</tr>')
    out = ('<h2 id="side-by-side">Side by side</h2><table class="sortable side"><thead><tr><th class="l">metric</th>'
           f'{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
    from ..results.compare import compare

    try:
        doc = compare([dict(d) for d in evals])
    except UserError as exc:
        return out + f'<h2 id="compare">Paired comparison</h2><p class="note">not compared: {esc(exc)}</p>'
    rows = []
    for r in doc["comparisons"]:
        cls = "" if not r["significant"] else ("better" if r["better"] == r["system_b"] else "worse")
        rows.append(f'<tr class="{cls}"><td class="l">{esc(r["metric"])}</td><td class="l">{esc(r["system_a"])}</td>'
                    f'<td class="l">{esc(r["system_b"])}</td><td>{r["n"]}</td><td data-v="{r["difference"]}">{r["difference"]:+.4f}</td>'
                    f'<td>[{r["ci_low"]:+.4f}, {r["ci_high"]:+.4f}]</td><td>{r["p"]:.3g}</td>'
                    f'<td class="{"sig" if r["significant"] else ""}">{r["p_holm"]:.3g}</td>'
                    f'<td>{r["rank_biserial"]:+.2f}</td><td class="l">{esc(r["better"])}</td></tr>')
    pairing = "".join(f"<li>{esc(p['system_a'])} vs {esc(p['system_b'])}: {p['common']} common clips"
                      + (f"; only in {esc(p['system_a'])}: {len(p['only_a'])}" if p["only_a"] else "")
                      + (f"; only in {esc(p['system_b'])}: {len(p['only_b'])}" if p["only_b"] else "") + "</li>"
                      for p in doc["pairing"])
    ci = doc["ci"]
    out += _matrix_html(doc, [r["system"] for r in doc["results"]])
    return out + (f'<h2 id="compare">Paired comparison</h2><ul>{pairing}</ul>'
                  f'<p class="note">B - A per clip; {int(round(100 * ci["level"]))}% paired bootstrap CI '
                  f'({ci["n_resamples"]} resamples, seed {ci["seed"]}); Wilcoxon signed-rank, Holm over '
                  f'{len(doc["comparisons"])} tests; r = matched-pairs rank-biserial. Green: B significantly better, '
                  'red: significantly worse.</p><table class="sortable compare"><thead><tr><th class="l">metric</th>'
                  '<th class="l">A</th><th class="l">B</th><th>n</th><th>B - A</th><th>CI</th><th>p</th><th>p (Holm)</th>'
                  f'<th>r</th><th class="l">better</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _matrix_html(doc, names) -> str:
    """Per metric, a systems x systems grid: cell (row R, column C) = mean of C - R per clip, bold
    where Holm-significant; green where the column system is the better one."""
    by_metric: dict = {}
    for r in doc["comparisons"]:
        by_metric.setdefault(r["metric"], {})[(r["system_a"], r["system_b"])] = r
    if not by_metric:
        return ""
    parts = ['<h2 id="compare-matrix">Compare matrix</h2><p class="note">Cell (row R, column C): mean per-clip '
             'difference C - R; bold = significant after Holm; green = C better, red = C worse.</p>']
    for metric, cells in by_metric.items():
        head = "".join(f"<th>{esc(n)}</th>" for n in names)
        rows = []
        for a in names:
            tds = []
            for b in names:
                r, sign = cells.get((a, b)), 1
                if r is None and (b, a) in cells:
                    r, sign = cells[(b, a)], -1
                if r is None:
                    tds.append("<td>-</td>")
                    continue
                d = sign * r["difference"]
                cls = "" if not r["significant"] else ("better" if r["better"] == b else "worse")
                text = f"<b>{d:+.4f}</b>" if r["significant"] else f"{d:+.4f}"
                tds.append(f'<td class="{cls}" data-v="{d}" title="p_holm {r["p_holm"]:.3g}">{text}</td>')
            rows.append(f'<tr><th class="l">{esc(a)}</th>{"".join(tds)}</tr>')
        parts.append(f'<table class="matrix" data-metric="{esc(metric)}"><caption>{esc(metric)}</caption>'
                     f'<thead><tr><th></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    return "".join(parts)


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
                        claims=("index.html", "img", "audio", MARKER))
    prepare_out(out)
    jobs, plan = [], []  # plan: what goes where on the page, filled once the figures are drawn
    for k, doc in enumerate(evals):
        rid = f"r{k}"
        entry = {"doc": doc, "rid": rid, "dist": [], "genre": None, "clips": []}
        for j, metric in enumerate(doc["aggregate"]):
            spec = sp.distribution_spec(doc, metric, f"{rid}-dist-{j}")
            if spec:
                jobs.append((spec, None))
                entry["dist"].append(spec["id"])
        entry["fad"] = []
        for j, metric in enumerate(m for m in doc["aggregate"] if m.startswith("fad")):
            spec = sp.fad_spec(doc, metric, f"{rid}-fad-{j}")
            if spec:
                jobs.append((spec, None))
                entry["fad"].append(spec["id"])
        g = sp.genre_spec(doc, f"{rid}-genre")
        if g:
            jobs.append((g, None))
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
            jobs.append((spec, None))
    drawn = {spec["id"]: (spec, svg) for spec, svg in draw_all(jobs, workers=workers)}
    page = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>d2m-bench report</title>"
            f"<style>{CSS}</style></head><body><h1>d2m-bench report</h1>"
            f'<p class="note">d2m-bench {esc(__version__)}, written {datetime.now(timezone.utc).isoformat(timespec="seconds")}; '
            f'inputs: {esc(", ".join(d["_path"] for d in evals + mos))}. How to read each figure: docs/report.md.</p><nav>'
            + "".join(f'<a href="#{e["rid"]}">{esc(label(e["doc"]))}</a>' for e in plan)
            + "".join(f'<a href="#m{k}-mos-sec">MOS {k + 1}</a>' for k in range(len(mos)))
            + ('<a href="#side-by-side">side by side</a><a href="#compare">compare</a>' if len(evals) > 1 else "")
            + "</nav>"]
    for e in plan:
        page.append(_result_html(e, drawn, out))
    for k, doc in enumerate(mos):
        fid = f"m{k}-mos"
        page.append(mos_html(doc, fid, drawn.get(fid, (None, None))[1]))
    if len(evals) > 1:
        page.append(multi_html(evals))
    page.append(f"<script>{SORT_JS}</script></body></html>\n")
    index = out / "index.html"
    write_text(index, "".join(page))
    return index


def _result_html(e, drawn, out) -> str:
    doc, rid = e["doc"], e["rid"]
    proto = doc.get("protocol") or {}
    excl = doc.get("excluded") or {}
    parts = [f'<h2 id="{rid}">{esc(label(doc))}</h2>'
             f'<p>{esc(Path(doc["_path"]).name)}: protocol {esc(proto.get("name"))} '
             f'({esc(str(proto.get("hash", ""))[:12])}), {len(doc["per_clip"])} pairs, '
             f'{esc(excl.get("count", 0))} excluded</p>', aggregate_table(doc)]
    for w in doc.get("warnings") or []:
        parts.append(f'<p class="note">warning: {esc(w)}</p>')
    for name, sec in (doc.get("sections") or {}).items():
        if isinstance(sec, dict) and sec.get("status") not in (None, "ok"):
            parts.append(f'<p class="note">[{esc(name)}] {esc(sec.get("status"))}: {esc(sec.get("reason", ""))}</p>')
    if e["dist"]:
        parts.append("<h3>Per-clip distributions</h3>")
        for fid in e["dist"]:
            spec, svg = drawn[fid]
            ci = f"; shaded: {int(round(100 * spec['ci_level']))}% percentile CI of the mean" if spec["ci_percentile"] else ""
            parts.append(figure_html(spec, svg, f"{esc(spec['metric'])}: clips per value (left) and every clip as a "
                                                f"dot (right); line: mean{ci}"))
    for fid in e.get("fad", []):
        spec, svg = drawn[fid]
        parts.append("<h3>FAD and FAD-inf</h3>" + figure_html(
            spec, svg, "FAD of random subsets of N generated embeddings against 1/N (dots), the least-squares line "
                       "and its intercept FAD-inf (diamond); the plain FAD of all embeddings with its bootstrap "
                       "interval over clips (blue)"))
    if e["genre"]:
        spec, svg = drawn[e["genre"]]
        parts.append("<h3>Genre</h3>" + figure_html(
            spec, svg, "confusion matrix (rows: dance genre, columns: genre retrieved for the generated clip; "
                       "shade = share of the row) and per-genre accuracy with the ground-truth ceiling"))
    if e["clips"]:
        parts.append("<h3>Clips</h3><p class=\"note\">Onsets of the ground truth (top) and the generated clip "
                     "(bottom) in 1-s bins, as Beats Coverage/Hit count them.</p>")
        for i, (cid, row, bid, aid) in enumerate(e["clips"]):
            spec, _ = drawn[bid]
            note = f" {esc(spec['envelope_note'])}" if spec.get("envelope_note") else ""
            body = f'<img src="img/{esc(bid)}.png" alt="onsets of {esc(cid)}">' + audio_html(row, out, f"{rid}-{i}")
            parts.append(figure_html(spec, body, f"{esc(cid)} ({esc(spec['why'])}){note}"))
        aligned = [(cid, aid) for cid, _, _, aid in e["clips"] if aid]
        if aligned:
            parts.append("<h3>Alignment</h3><p class=\"note\">Kinematic beats of the dance (FACT) against the "
                         "music beats of the generated and the ground-truth clip; grey: each kinematic beat to "
                         "its nearest generated music beat.</p>")
            for cid, aid in aligned:
                spec, _ = drawn[aid]
                parts.append(figure_html(spec, f'<img src="img/{esc(aid)}.png" alt="beats of {esc(cid)}">', esc(cid)))
    return "".join(parts)
