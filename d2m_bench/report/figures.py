"""Report figures, drawn with matplotlib (Agg) from the specs in specs.py, in worker processes.

Summary figures (distributions, genre heat map, MOS, systems) are written as SVG with real
<text> elements and element ids (``<fig id>-bar-<i>``, ``-cell-<i>-<j>``, ...) so that the page
can inline them and a test can read what was drawn; per-clip figures are PNG files at print
resolution (DPI) with an SVG beside each. Every figure is drawn at its print width (WIDTH_IN)
with text of at least FONT_PT points: the page shows it at that size (96 CSS px per inch), so
the text reads at >= 9 pt on screen as on paper. Values are drawn in their display unit
(results/units.py: fractions and ratios in %).
"""
from __future__ import annotations

import io
import os

import numpy as np

from ..results.units import axis_label, format_value, scale

GT, PRED, HIT, MISS, EXTRA = "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#c9a227"
DPI = 150  # PNG resolution: print quality at the drawn size
FONT_PT = 9  # smallest text anywhere in a figure, at the drawn (= displayed) size
WIDTH_IN = 7.5  # drawn width of the wide figures; the page shows them at WIDTH_IN * 96 CSS px


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # text.parse_math off: labels, genre names and clip ids come from result files, and a
    # "$\frac{1}{$" there made mathtext raise after img/ was written. No figure uses mathtext.
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "d2m-bench", "font.size": FONT_PT,
                         "axes.titlesize": FONT_PT + 1, "axes.labelsize": FONT_PT, "xtick.labelsize": FONT_PT,
                         "ytick.labelsize": FONT_PT, "legend.fontsize": FONT_PT, "figure.titlesize": FONT_PT + 1,
                         "pdf.fonttype": 42, "text.parse_math": False, "axes.spines.top": False,
                         "axes.spines.right": False})
    return plt


_TARGET: list = [None]  # file stem (no suffix) the summary figure being drawn is also written to


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    if _TARGET[0]:  # the same figure as files beside the page: SVG and PDF (vector, for papers)
        with open(_TARGET[0] + ".svg", "w", encoding="utf-8") as fh:
            fh.write(text)
        fig.savefig(_TARGET[0] + ".pdf", format="pdf", metadata={"CreationDate": None})
    return text[text.index("<svg"):]  # inline in HTML: no XML prolog or DOCTYPE


def _fmt(v, unit):
    return format_value(v, unit)


def _scaled(values, unit) -> list:
    return [scale(v, unit) for v in values]


def draw_distribution(spec: dict) -> str:
    plt = _mpl()
    fid = spec["id"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(WIDTH_IN, 2.8), gridspec_kw={"width_ratios": [3, 2]})
    unit = spec["unit"]
    centers = _scaled(spec["centers"], unit)
    if spec["edges"]:
        width = np.diff(_scaled(spec["edges"], unit)).tolist()
    else:  # one bar per distinct value: narrow, so that bars never merge into a block
        c = centers
        span = (c[-1] - c[0]) if len(c) > 1 else 1.0
        width = [min(0.6 * min(np.diff(c)) if len(c) > 1 else 1.0, 0.08 * span or 0.1)] * len(c)
    for i, (c, n, w) in enumerate(zip(centers, spec["counts"], width)):
        bar = ax1.bar(c, n, width=w * (0.95 if spec["edges"] else 1.0), color=PRED, edgecolor="white", alpha=0.9)[0]
        bar.set_gid(f"{fid}-bar-{i}")
    ax1.set_ylabel("clips")
    ax1.set_xlabel(axis_label(spec["metric"], unit))
    lo_hi = _scaled(spec["ci_percentile"], unit) if spec["ci_percentile"] else None
    mean = scale(spec["mean"], unit)
    for ax in (ax1, ax2):
        line = ax.axvline(mean, color="black", lw=1.2) if ax is ax1 else ax.axhline(mean, color="black", lw=1.2)
        line.set_gid(f"{fid}-mean-{'h' if ax is ax1 else 's'}")
        if lo_hi:
            band = (ax.axvspan(*lo_hi, color=GT, alpha=0.25, zorder=3) if ax is ax1
                    else ax.axhspan(*lo_hi, color=GT, alpha=0.25, zorder=0))
            band.set_gid(f"{fid}-ci-{'h' if ax is ax1 else 's'}")
    pts = ax2.scatter(spec["jitter"], _scaled(spec["values"], unit), s=14, color=PRED, alpha=0.8, linewidths=0, zorder=2)
    pts.set_gid(f"{fid}-strip")
    ax2.set_xlim(-0.6, 0.6)
    ax2.set_xticks([])
    ax2.set_ylabel(axis_label(spec["metric"], unit))
    raw = spec["ci_percentile"]
    ci = f"  {int(round(100 * spec['ci_level']))}% CI [{_fmt(raw[0], unit)}, {_fmt(raw[1], unit)}]" if raw else ""
    fig.suptitle(f"{spec['metric']}: mean {_fmt(spec['mean'], unit)}{ci}  (n = {spec['n']})")
    fig.tight_layout()
    out = _svg(fig)
    plt.close(fig)
    return out


def draw_genre(spec: dict) -> str:
    plt = _mpl()
    from matplotlib.patches import Rectangle

    fid = spec["id"]
    labels, mat = spec["labels"], np.asarray(spec["matrix"], float)
    k = len(labels)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.9), gridspec_kw={"width_ratios": [1.1, 1]})
    rows = mat.sum(axis=1, keepdims=True)
    share = np.divide(mat, rows, out=np.zeros_like(mat), where=rows > 0)
    cmap = plt.get_cmap("Blues")
    for i in range(k):
        for j in range(k):
            rect = Rectangle((j, i), 1, 1, facecolor=cmap(0.1 + 0.85 * share[i, j]), edgecolor="white")
            rect.set_gid(f"{fid}-cell-{i}-{j}")
            ax.add_patch(rect)
            txt = ax.text(j + 0.5, i + 0.5, str(int(mat[i, j])), ha="center", va="center", fontsize=FONT_PT,
                          color="white" if share[i, j] > 0.6 else "black")
            txt.set_gid(f"{fid}-count-{i}-{j}")
    ax.set_xlim(0, k)
    ax.set_ylim(k, 0)
    ax.set_xticks(np.arange(k) + 0.5, labels, rotation=90)
    ax.set_yticks(np.arange(k) + 0.5, labels)
    ax.set_xlabel("retrieved genre")
    ax.set_ylabel("dance genre (true)")
    ax.set_aspect("equal")
    acc = [spec["per_genre"].get(lab) for lab in labels]
    ceil = [spec["per_genre_ceiling"].get(lab) for lab in labels]
    y = np.arange(k)
    for i, v in enumerate(acc):
        if v is not None:
            ax2.barh(i, scale(v, "fraction"), height=0.6, color=PRED)[0].set_gid(f"{fid}-acc-{i}")
    for i, v in enumerate(ceil):
        if v is not None:
            ax2.plot([scale(v, "fraction")] * 2, [i - 0.4, i + 0.4], color="black", lw=1.5, gid=f"{fid}-ceiling-{i}")
    if spec.get("chance"):
        ax2.axvline(scale(spec["chance"], "fraction"), color="grey", ls=":", lw=1)
    ax2.set_yticks(y, labels)
    ax2.set_ylim(k - 0.5, -0.5)
    ax2.set_xlim(0, 100)
    ax2.set_xlabel("per-genre accuracy (%)\nbar: generated, tick: gt ceiling, dotted: chance")
    fig.suptitle(f"{spec['metric']}: {_fmt(spec['accuracy'], 'fraction')} (gt ceiling {_fmt(spec['ceiling'], 'fraction')})")
    fig.tight_layout()
    out = _svg(fig)
    plt.close(fig)
    return out


def draw_mos(spec: dict) -> str:
    plt = _mpl()
    fid = spec["id"]
    aspects, systems = spec["aspects"], spec["systems"]
    fig, axes = plt.subplots(1, len(aspects), figsize=(min(WIDTH_IN, 3.2 * len(aspects) + 0.8),
                                                       0.45 * len(systems) + 1.6), squeeze=False)
    for a, (ax, aspect) in enumerate(zip(axes[0], aspects)):
        for r in spec["rows"]:
            if r["aspect"] != aspect:
                continue
            i = systems.index(r["system"])
            if r.get("ci_t_low") is not None:
                ax.plot([r["ci_t_low"], r["ci_t_high"]], [i - 0.12] * 2, color=GT, lw=2, gid=f"{fid}-t-{a}-{i}")
            if r.get("ci_boot_low") is not None:
                ax.plot([r["ci_boot_low"], r["ci_boot_high"]], [i + 0.12] * 2, color=EXTRA, lw=2, gid=f"{fid}-boot-{a}-{i}")
            ax.plot([r["mean"]], [i], "o", color="black", ms=4, gid=f"{fid}-mean-{a}-{i}")
        ax.set_yticks(range(len(systems)), systems if a == 0 else [""] * len(systems))
        ax.set_ylim(len(systems) - 0.5, -0.5)
        ax.set_title(aspect)
        ax.set_xlabel("MOS (rating scale)\nblue: t CI, gold: bootstrap CI")
    fig.tight_layout()
    out = _svg(fig)
    plt.close(fig)
    return out


def _save(fig, path: str) -> None:
    """The PNG at print resolution and, beside it, the same figure as SVG (vector, for papers)."""
    fig.savefig(path, dpi=DPI)
    fig.savefig(os.path.splitext(path)[0] + ".svg", format="svg", metadata={"Date": None})


def _envelope(req: dict, which: str):
    """Onset strength of one side, recomputed as eval computed it (audio decoded and fitted to
    the scored length, then the same onset envelope)."""
    from ..io.audio import read_audio
    from ..features.events import fit_length
    from ..metrics.beats import onset_envelope

    y, _, _ = read_audio(req[which], req["sr"], mix=req["mono"], res_type=req["resample"])
    y = fit_length(y, req[f"{which}_samples"])
    env = onset_envelope(np.asarray(y, np.float32), sr=req["sr"], hop_length=req["hop"])
    times = np.arange(len(env)) * req["hop"] / req["sr"]
    peak = float(env.max()) if len(env) and env.max() > 0 else 1.0
    return times.tolist(), (env / peak).tolist()


def draw_beats(spec: dict, path: str) -> dict:
    plt = _mpl()
    req = spec.pop("envelope_request", None)
    if req:
        try:
            for side in ("gt", "pred"):
                spec[f"{side}_envelope_t"], spec[f"{side}_envelope"] = _envelope(req, side)
        except Exception as exc:  # a moved or unreadable file: the figure says so instead of failing the report
            spec["envelope_note"] = f"envelopes not recomputed: {exc.__class__.__name__}: {exc}"
    fig, axes = plt.subplots(2, 1, figsize=(WIDTH_IN, 3.6), sharex=True)
    width = spec.get("bin_seconds")
    end = spec.get("seconds") or max(spec["gt_events"] + spec["pred_events"] + [1.0])
    for ax, side, colour in ((axes[0], "gt", GT), (axes[1], "pred", PRED)):
        if width:
            bins = spec[f"{side}_bins"]
            for i, occ in enumerate(bins):
                if side == "gt":
                    face = "#e8e8e8" if occ else "white"
                else:
                    hit = i < len(spec["hit_bins"]) and spec["hit_bins"][i]
                    gt_occ = i < len(spec["gt_bins"]) and spec["gt_bins"][i]
                    face = HIT if hit else (EXTRA if occ else (MISS if gt_occ else "white"))
                ax.axvspan(i * width, (i + 1) * width, color=face, alpha=0.25 if side == "pred" else 1.0, lw=0)
                ax.axvline(i * width, color="grey", lw=0.5, ls=":")
        if spec.get(f"{side}_envelope"):
            ax.plot(spec[f"{side}_envelope_t"], spec[f"{side}_envelope"], color=colour, lw=1)
        for t in spec[f"{side}_events"]:
            ax.axvline(t, color=colour, lw=1.4, ymin=0, ymax=0.9)
        # onset lines are drawn to 0.9 of the axis; envelopes are normalised to their peak (1)
        ax.set_ylabel(("gt" if side == "gt" else "generated") + "\nonset strength")
        ax.set_ylim(0, 1.05)
        ax.set_yticks([0, 0.5, 1])
        ax.set_xlim(0, end)
        if width:
            ax.set_xticks(np.arange(0, end + 1e-9, width))
    axes[1].set_xlabel("time (s)" + ("  |  bins: green hit, red missed gt bin, gold extra" if width else ""))
    score = ", ".join(f"{k} {format_value(v, 'fraction')}" for k, v in spec["scores"].items())
    fig.suptitle(f"{spec['clip']} ({spec['why']})\n{score}")
    # fixed margins: tight_layout draws every figure twice (a third of the report's time)
    fig.subplots_adjust(left=0.13, right=0.98, bottom=0.15, top=0.84, hspace=0.15)
    _save(fig, path)
    plt.close(fig)
    return spec


def draw_alignment(spec: dict, path: str) -> dict:
    plt = _mpl()
    fps = spec["fps"]
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.3))
    rows = (("motion (kinematic)", spec["kinematic"], "black"), ("music: generated", spec["music_pred"], PRED),
            ("music: gt", spec["music_gt"], GT))
    for i, (_, frames, colour) in enumerate(rows):
        t = np.asarray(frames, float) / fps
        ax.vlines(t, i - 0.35, i + 0.35, color=colour, lw=2)
    kin = np.asarray(spec["kinematic"], float) / fps
    pred = np.asarray(spec["music_pred"], float) / fps
    for k in kin:  # each kinematic beat to its nearest generated music beat (what BeatAlign scores)
        if len(pred):
            m = pred[np.argmin(np.abs(pred - k))]
            ax.plot([k, m], [0.35, 0.65], color="grey", lw=0.8)
    ax.set_yticks(range(3), [r[0] for r in rows])
    ax.set_ylim(2.6, -0.6)
    ax.set_xlabel("time (s)")
    score = ", ".join(f"{k} {format_value(v, 'fraction')}" for k, v in spec["scores"].items())
    ax.set_title(f"{spec['clip']} ({spec['why']})\n{score}")
    fig.subplots_adjust(left=0.22, right=0.98, bottom=0.22, top=0.78)
    _save(fig, path)
    plt.close(fig)
    return spec


def draw_fad(spec: dict) -> str:
    plt = _mpl()
    fid = spec["id"]
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    x = 1.0 / np.asarray(spec["sizes"], float)
    ax.plot(x, spec["fad"], "o", color=PRED, ms=4, gid=f"{fid}-points")
    if spec["slope"] is not None and spec["intercept"] is not None:
        xs = np.array([0.0, x.max()])
        ax.plot(xs, spec["intercept"] + spec["slope"] * xs, color="grey", lw=1, ls="--", gid=f"{fid}-fit")
        ax.plot([0], [spec["intercept"]], "D", color="black", ms=5, gid=f"{fid}-inf")
    full = 1.0 / spec["n_examples"]
    if spec["ci_percentile"]:
        ax.plot([full, full], spec["ci_percentile"], color=GT, lw=2, gid=f"{fid}-ci")
    ax.plot([full], [spec["value"]], "o", color=GT, ms=6, gid=f"{fid}-value")
    ax.set_xlabel("1 / N (N = generated embeddings in the subset)")
    ax.set_ylabel(spec["metric"])
    ax.set_xlim(left=-0.02 * x.max())
    r2 = f", r\u00b2 {spec['r2']:.2f}" if spec.get("r2") is not None else ""
    ax.set_title(f"FAD {_fmt(spec['value'], 'score')} (blue, with CI), FAD-inf {_fmt(spec['intercept'], 'score')} "
                 f"(diamond){r2}")
    fig.tight_layout()
    out = _svg(fig)
    plt.close(fig)
    return out


def draw_systems(spec: dict) -> str:
    """One metric across systems: the mean (dot) and its CI (bar) per system, in the display unit."""
    plt = _mpl()
    fid, unit, rows = spec["id"], spec["unit"], spec["rows"]
    fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.75, 0.42 * len(rows) + 1.3))
    for i, r in enumerate(rows):
        if r["ci"]:
            lo, hi = _scaled(r["ci"], unit)
            ax.plot([lo, hi], [i, i], color=GT, lw=2.5, solid_capstyle="butt", gid=f"{fid}-ci-{i}")
        ax.plot([scale(r["value"], unit)], [i], "o", color="black", ms=5, gid=f"{fid}-mean-{i}")
    ax.set_yticks(range(len(rows)), [r["system"] for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    level = f"{int(round(100 * spec['ci_level']))}% CI" if spec.get("ci_level") else "CI"
    better = "higher is better" if spec["higher_is_better"] else "lower is better"
    ax.set_xlabel(f"{axis_label(spec['metric'], unit)}: mean (dot), {level} (bar); {better}")
    ax.grid(axis="x", color="#dddddd", lw=0.6)
    fig.tight_layout()
    out = _svg(fig)
    plt.close(fig)
    return out


SVG_DRAWERS = {"distribution": draw_distribution, "genre": draw_genre, "mos": draw_mos, "fad": draw_fad,
               "systems": draw_systems}
PNG_DRAWERS = {"beats": draw_beats, "alignment": draw_alignment}


def draw(job):
    """Worker entry: (spec, png path or None) -> (spec, svg text or None). A summary (SVG) figure
    given a path is also written there as .svg and .pdf (the path's suffix is replaced)."""
    spec, path = job
    if spec["kind"] in SVG_DRAWERS:
        _TARGET[0] = os.path.splitext(path)[0] if path else None
        try:
            return spec, SVG_DRAWERS[spec["kind"]](spec)
        finally:
            _TARGET[0] = None
    return PNG_DRAWERS[spec["kind"]](spec, path), None


def _init_worker():
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _mpl()


def draw_all(jobs: list, *, workers: int = 2) -> list:
    """Draw every job, in ``workers`` processes (forked: matplotlib is imported once per worker)."""
    if workers <= 1 or len(jobs) < 4:
        _mpl()
        return [draw(j) for j in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=min(workers, os.cpu_count() or 1), mp_context=ctx,
                             initializer=_init_worker) as pool:
        return list(pool.map(draw, jobs, chunksize=max(1, len(jobs) // (workers * 4))))
