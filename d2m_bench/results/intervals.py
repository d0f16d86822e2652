"""Bootstrap confidence intervals over clips, a bootstrap interval for FAD, and FAD-inf.

Every interval resamples clips (the unit a benchmark draws), with replacement, from a seeded
``numpy.random.default_rng(seed)``: replicate b uses ``rng.integers(0, n, (B, n))[b]``, the
draw ``scipy.stats.bootstrap`` makes, so both give the same replicates for one seed.

- percentile: the alpha/2 and 1 - alpha/2 quantiles of the replicates (linear interpolation).
- BCa (Efron & Tibshirani 1993, ch. 14.3): the quantiles are moved by the bias correction
  z0 = Phi^-1((#{theta_b < theta} + #{theta_b <= theta}) / 2B) and the acceleration
  a = sum(U^3) / (6 (sum U^2)^1.5), U_i = mean_j(theta_(j)) - theta_(i) from the jackknife.

FAD-inf (Chong & Forsyth, CVPR 2020, "Effectively unbiased FID"; the FAD form as fadtk computes
it, Gui et al. ICASSP 2024): FAD is biased upwards by a term ~ 1/N in the number N of evaluated
embeddings. FAD is computed on random subsets of the generated embeddings of several sizes
(against all the reference embeddings), a line is fitted to FAD against 1/N, and its intercept
(N -> infinity) is FAD-inf.

CI settings (level, replicates, seed) come from the protocol's ``[ci]`` table; they change no
point value, so that table is not part of the protocol hash (see protocol.UNHASHED_TABLES).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import ndtr, ndtri

DEFAULTS = {"level": 0.95, "n_resamples": 2000, "seed": 0,
            "fad_resamples": 200, "fad_inf_steps": 10, "fad_inf_min_fraction": 0.25}
CI_KEYS = tuple(DEFAULTS)


def settings(table: dict | None) -> dict:
    """The protocol's ``[ci]`` table over the defaults (a protocol without the table gets these)."""
    return {**DEFAULTS, **(table or {})}


def resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) clip indices drawn with replacement: the draw scipy.stats.bootstrap makes.
    Read-only; up to 32 MB of indices are drawn once per (n, n_resamples, seed) and kept, since
    every metric of a result uses the same draw."""
    if n * n_resamples > 4_000_000:
        return np.random.default_rng(seed).integers(0, n, (n_resamples, n))
    return _drawn(int(n), int(n_resamples), int(seed))


@lru_cache(maxsize=4)
def _drawn(n: int, n_resamples: int, seed: int) -> np.ndarray:
    idx = np.random.default_rng(seed).integers(0, n, (n_resamples, n))
    idx.flags.writeable = False
    return idx


def _percentile_interval(reps, level):
    alpha = 1.0 - level
    lo, hi = np.percentile(reps, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def bca_interval(reps, theta, jackknife, level):
    """BCa bounds from the replicates, the full-sample value and the leave-one-out values;
    (None, None, reason) when the correction is undefined."""
    reps = np.asarray(reps, float)
    jackknife = np.asarray(jackknife, float)
    z0 = ndtri((np.count_nonzero(reps < theta) + np.count_nonzero(reps <= theta)) / (2.0 * len(reps)))
    u = jackknife.mean() - jackknife
    den = float((u ** 2).sum())
    if not math.isfinite(z0) or den == 0.0:
        return None, None, "BCa undefined: the estimate lies outside every replicate or the jackknife is constant"
    a = float((u ** 3).sum()) / (6.0 * den ** 1.5)
    alpha = 1.0 - level
    bounds = []
    for z in (ndtri(alpha / 2), ndtri(1 - alpha / 2)):
        bounds.append(ndtr(z0 + (z0 + z) / (1.0 - a * (z0 + z))))
    lo, hi = np.percentile(reps, [100 * bounds[0], 100 * bounds[1]])
    return float(lo), float(hi), None


def interval(reps, theta, jackknife, *, level, n_resamples, seed, unit="clip") -> dict:
    """The interval record written into a result: both methods, with what produced them."""
    reps = np.asarray(reps, float)
    out = {"level": level, "n_resamples": n_resamples, "seed": seed, "resampled": unit,
           "percentile": list(_percentile_interval(reps, level)), "bootstrap_se": float(reps.std(ddof=1))}
    if np.ptp(reps) == 0.0 and np.ptp(jackknife) == 0.0:
        out["bca"] = list(out["percentile"])  # every clip scores the same: the interval is that point
        out["note"] = "every resample gives the same value"
        return out
    lo, hi, reason = bca_interval(reps, theta, jackknife, level)
    out["bca"] = None if reason else [lo, hi]
    if reason:
        out["note"] = reason
    return out


def mean_ci(values, *, level=0.95, n_resamples=2000, seed=0) -> dict | None:
    """Bootstrap CI of the mean of per-clip ``values``; None for fewer than 2 values."""
    x = np.asarray(values, float)
    n = len(x)
    if n < 2:
        return None
    reps = x[resample_indices(n, n_resamples, seed)].mean(axis=1)
    jack = (x.sum() - x) / (n - 1)
    return interval(reps, float(x.mean()), jack, level=level, n_resamples=n_resamples, seed=seed)


def harmonic_mean_ci(a, b, *, level=0.95, n_resamples=2000, seed=0) -> dict | None:
    """CI of the harmonic mean of the means of two per-clip columns (loris_f1's definition)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = len(a)
    if n < 2:
        return None

    def hm(x, y):
        s = x + y
        return np.divide(2 * x * y, s, out=np.zeros_like(s), where=s > 0)

    idx = resample_indices(n, n_resamples, seed)
    reps = hm(a[idx].mean(axis=1), b[idx].mean(axis=1))
    jack = hm((a.sum() - a) / (n - 1), (b.sum() - b) / (n - 1))
    return interval(reps, float(hm(np.array([a.mean()]), np.array([b.mean()]))[0]), jack,
                    level=level, n_resamples=n_resamples, seed=seed)


# ---------------------------------------------------------------- FAD

class _Side:
    """Per-clip sums of one side's example embeddings, so that a bootstrap replicate (clip
    counts) or a leave-one-clip-out set gets its mean and covariance without re-stacking.

    Every example is shifted by one common vector first: FAD is translation invariant, and
    small means keep the second-moment formula cov = (M - s s^T / N) / (N - 1) accurate.
    """

    def __init__(self, sets, shift):
        xs = [np.asarray(x, np.float64) - shift for x in sets]
        self.x = np.concatenate(xs)
        self.of = np.repeat(np.arange(len(xs)), [len(x) for x in xs])
        self.count = np.array([len(x) for x in xs], float)
        self.sums = np.stack([x.sum(axis=0) for x in xs])
        self.moments = [x.T @ x for x in xs]
        self.total = (self.x.T @ self.x, self.sums.sum(axis=0), self.count.sum())

    @staticmethod
    def _gaussian(m, s, n):
        return s / n, (m - np.outer(s, s) / n) / (n - 1)

    def replicate(self, counts):
        w = counts[self.of].astype(float)
        return self._gaussian((self.x * w[:, None]).T @ self.x, counts @ self.sums, float(counts @ self.count))

    def without(self, i):
        m, s, n = self.total
        return self._gaussian(m - self.moments[i], s - self.sums[i], n - self.count[i])


def fad_bootstrap(pred_sets, gt_sets, *, level=0.95, n_resamples=200, seed=0) -> dict | None:
    """Bootstrap CI of FAD over clips: clip i contributes its per-example embeddings
    ``pred_sets[i]`` and ``gt_sets[i]``; a replicate draws clips with replacement (the same
    clips on both sides, so the pairing is kept) and computes FAD on their examples; the BCa
    jackknife leaves one clip out on both sides. None when fewer than 2 clips."""
    from threadpoolctl import threadpool_limits

    from ..metrics.fad import frechet_distance

    n = len(pred_sets)
    if n < 2 or len(gt_sets) != n:
        return None
    shift = np.concatenate([np.asarray(g, np.float64) for g in gt_sets]).mean(axis=0)
    pred, gt = _Side(pred_sets, shift), _Side(gt_sets, shift)

    def fad(p, g, n_p, n_g):
        return frechet_distance(*p, *g) if min(n_p, n_g) >= 2 else math.nan

    # 128 x 128 products: a multi-threaded BLAS only adds contention (15x slower on 2 busy cores)
    with threadpool_limits(1):
        theta = fad(pred.replicate(np.ones(n)), gt.replicate(np.ones(n)), pred.total[2], gt.total[2])
        reps = []
        for idx in resample_indices(n, n_resamples, seed):
            c = np.bincount(idx, minlength=n).astype(float)
            reps.append(fad(pred.replicate(c), gt.replicate(c), c @ pred.count, c @ gt.count))
        jack = [fad(pred.without(i), gt.without(i), pred.total[2] - pred.count[i], gt.total[2] - gt.count[i])
                for i in range(n)]
    reps, jack = np.asarray(reps), np.asarray(jack)
    reps = reps[np.isfinite(reps)]
    if len(reps) < 2 or not np.isfinite(jack).all():
        return None
    return interval(reps, theta, jack, level=level, n_resamples=n_resamples, seed=seed)


def fad_inf(pred, gt=None, *, steps=10, min_fraction=0.25, seed=0, reference=None) -> dict | None:
    """FAD-inf: intercept of the line fitted to FAD(random subset of N generated embeddings,
    all reference embeddings) against 1/N, for ``steps`` sizes N from ``min_fraction`` of the
    generated embeddings to all of them. None when fewer than 2 distinct sizes >= 2 exist.
    ``reference``: the reference Gaussian (mean, cov) instead of its embeddings ``gt`` (a
    statistics file); the numbers are the same."""
    from ..metrics.fad import frechet_distance, gaussian_stats

    pred = np.asarray(pred, np.float64)
    total = len(pred)
    sizes = np.unique(np.linspace(max(2, math.ceil(min_fraction * total)), total, steps).round().astype(int))
    sizes = sizes[sizes >= 2]
    if len(sizes) < 2 or (reference is None and len(gt) < 2):
        return None
    ref = reference if reference is not None else gaussian_stats(gt)
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    with threadpool_limits(1):
        values = [frechet_distance(*gaussian_stats(pred[rng.choice(total, size=n, replace=False)]), *ref)
                  for n in sizes]
    slope, intercept = np.polyfit(1.0 / sizes, values, 1)
    fit = slope / sizes + intercept
    ss = float(((np.asarray(values) - np.mean(values)) ** 2).sum())
    r2 = 1.0 - float(((np.asarray(values) - fit) ** 2).sum()) / ss if ss > 0 else 1.0
    return {"value": float(intercept), "slope": float(slope), "r2": r2, "sizes": sizes.tolist(),
            "fad": [float(v) for v in values], "seed": seed,
            "definition": "intercept of a least-squares line through FAD against 1/N over random subsets "
                          "of N generated embeddings (Chong & Forsyth 2020; as fadtk)"}


def fad_bootstrap_unpaired(eval_sets, ref_mean, ref_cov, *, level=0.95, n_resamples=200, seed=0) -> dict | None:
    """Bootstrap CI of FAD between an evaluation set and a fixed reference Gaussian: a
    replicate draws evaluation files with replacement (file i contributes its vectors
    ``eval_sets[i]``), the reference (a background set or its statistics file) is held fixed;
    the BCa jackknife leaves one evaluation file out. None when fewer than 2 files."""
    from threadpoolctl import threadpool_limits

    from ..metrics.fad import frechet_distance

    n = len(eval_sets)
    if n < 2:
        return None
    ref_mean = np.asarray(ref_mean, np.float64)
    side = _Side(eval_sets, ref_mean)
    zero = np.zeros_like(ref_mean)

    def fad(gauss, count):
        return frechet_distance(*gauss, zero, ref_cov) if count >= 2 else math.nan

    with threadpool_limits(1):
        theta = fad(side.replicate(np.ones(n)), side.total[2])
        reps = []
        for idx in resample_indices(n, n_resamples, seed):
            c = np.bincount(idx, minlength=n).astype(float)
            reps.append(fad(side.replicate(c), c @ side.count))
        jack = [fad(side.without(i), side.total[2] - side.count[i]) for i in range(n)]
    reps, jack = np.asarray(reps), np.asarray(jack)
    reps = reps[np.isfinite(reps)]
    if len(reps) < 2 or not np.isfinite(jack).all():
        return None
    out = interval(reps, theta, jack, level=level, n_resamples=n_resamples, seed=seed, unit="evaluation file")
    out["reference"] = "held fixed"
    return out


def per_clip_fad(pred_examples, gt_examples) -> list:
    """FAD between one clip's generated and ground-truth examples; None where a side has
    fewer than 2 examples (no covariance)."""
    from threadpoolctl import threadpool_limits

    from ..metrics.fad import frechet_audio_distance

    with threadpool_limits(1):
        return [frechet_audio_distance(p, g) if len(p) >= 2 and len(g) >= 2 else None
                for p, g in zip(pred_examples, gt_examples)]


def fad_extras(pred_examples, gt_examples, table: dict | None) -> dict:
    """What the genre section adds beside a FAD value: ``ci`` and ``fad_inf`` (absent when undefined)."""
    s = settings(table)
    out = {}
    ci = fad_bootstrap(pred_examples, gt_examples, level=s["level"], n_resamples=s["fad_resamples"], seed=s["seed"])
    if ci is not None:
        out["ci"] = ci
    inf = fad_inf(np.concatenate(pred_examples), np.concatenate(gt_examples), steps=s["fad_inf_steps"],
                  min_fraction=s["fad_inf_min_fraction"], seed=s["seed"])
    if inf is not None:
        out["fad_inf"] = inf
    return out


# ---------------------------------------------------------------- eval results

# Aggregates whose per-clip column has another name than the metric.
_COLUMNS = {"_precision": "precision", "_recall": "recall", "_f_measure": "f_measure"}


def column_for(name, metric, rows):
    """The per-clip column holding ``metric``'s values: its own name, the tolerance variant's
    unprefixed name, or the genre section's 0/1 ``genre_correct`` columns."""
    cands = [name]
    cands += [col for suffix, col in _COLUMNS.items() if name.endswith(suffix)]
    # The per-clip 0/1 column has no embedder suffix today; the suffixed name is tried first.
    if name.startswith("genre_accuracy_gt_ceiling"):
        cands += ["genre_correct_gt" + name[len("genre_accuracy_gt_ceiling"):], "genre_correct_gt"]
    elif name.startswith("genre_accuracy"):
        cands += ["genre_correct" + name[len("genre_accuracy"):], "genre_correct"]
    for col in cands:
        vals = [r[col] for r in rows if isinstance(r.get(col), (int, float)) and not isinstance(r.get(col), bool)]
        if vals:
            yield col, vals


def add_intervals(aggregate: dict, rows: list, table: dict | None, excluded=()) -> None:
    """Add ``ci`` to every aggregate that is a mean of a per-clip column (and to loris_f1).

    The column is accepted only when its mean and count reproduce the aggregate's ``value`` and
    ``n``: an interval is never attached to numbers other than those the value came from.
    Aggregates that already carry a ``ci`` (FAD, from its section) are left as they are.
    """
    s = settings(table)
    kw = dict(level=s["level"], n_resamples=s["n_resamples"], seed=s["seed"])
    skip = {e.get("id") for e in excluded}
    kept = [r for r in rows if r.get("id") not in skip]
    for name, m in aggregate.items():
        if not isinstance(m, dict) or "ci" in m or not isinstance(m.get("value"), (int, float)):
            continue
        if name.startswith("fad"):  # a set statistic: its interval comes with it from the genre section
            continue
        if name == "loris_f1":
            a = [r["loris_coverage"] for r in rows if r.get("loris_coverage") is not None]
            b = [r["loris_hit"] for r in rows if r.get("loris_hit") is not None]
            if len(a) == len(b) == m.get("n"):
                m["ci"] = harmonic_mean_ci(a, b, **kw)
            continue
        for col, vals in [*column_for(name, m, rows), *column_for(name, m, kept)]:
            if len(vals) == m.get("n") and math.isclose(float(np.mean(vals)), m["value"], rel_tol=1e-9, abs_tol=1e-12):
                m["ci"] = mean_ci(vals, **kw)
                m["ci_column"] = col
                break
        else:
            m["ci"] = None
            m["ci_note"] = "no per-clip column reproduces this aggregate: no interval"
