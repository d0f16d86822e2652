"""Warnings that travel with a result to the leaderboard, and the shifted-pairing test.

A number on a leaderboard is read without the run's terminal output, so what eval warned
about must reach the row: near-silent, flat, much quieter or identical predictions (the
sanity section), clips excluded from a metric, length-policy actions, and a pairing that looks
shifted. :func:`run_flags` derives them from a result document, old or new.

Shifted pairing (:func:`pairing_check`). A pipeline that pairs files by position can score
every prediction against another clip's gt. With S[i, j] the share of the events of
prediction i and gt j that have an event of the other within +/-70 ms (the tolerance window;
for well separated events the one-to-one event F-measure):

1. structure: the best one-to-one assignment of predictions to gts (Hungarian,
   scipy.optimize.linear_sum_assignment) has a mean similarity H. Under "no pairing structure"
   (every row's entries shuffled independently, seeded, N_NULL times) the same maximum is H_0; the set has a
   pairing structure when H exceeds H_0 in all but a fraction p_structure < ALPHA of shuffles;
2. not the given one: the assignment moves at least half of the clips off their own gt, and
   the given pairing is no better than a random one (mean S[i, i] is below the
   (1 - ALPHA) quantile of mean S[i, pi(i)] over random permutations pi).
Both together: the predictions match other clips' gt better than their own. A constant or
input-independent output (a metronome, noise) has no structure and is not flagged; a good
system, correctly paired, has structure that the identity explains.
"""
from __future__ import annotations

import numpy as np

ALPHA = 0.01
N_NULL = 100  # p_structure >= 1/101: still below ALPHA when no shuffle reaches the observed maximum
MAX_CLIPS = 150  # beyond this a seeded sample of clips is tested (the matrix is n^2 matchings)
WINDOW = 0.07


def _hits(events, others, window: float) -> np.ndarray:
    """H[i, j] = how many events of ``events[i]`` have an event of ``others[j]`` within ``window``."""
    n = len(events)
    flat = np.concatenate([np.asarray(e, float) for e in events]) if n else np.zeros(0)
    owner = np.repeat(np.arange(n), [len(e) for e in events])
    out = np.zeros((n, len(others)))
    for j, other in enumerate(others):
        ref = np.sort(np.asarray(other, float))
        if not len(ref) or not len(flat):
            continue
        k = np.clip(np.searchsorted(ref, flat), 1, len(ref) - 1) if len(ref) > 1 else np.zeros(len(flat), int)
        nearest = np.minimum(np.abs(flat - ref[k]), np.abs(flat - ref[np.maximum(k - 1, 0)]))
        out[:, j] = np.bincount(owner, weights=nearest <= window + 1e-10, minlength=n)
    return out


def similarity_matrix(pred_events, gt_events, window: float = WINDOW) -> np.ndarray:
    """S[i, j]: the share of the events of prediction i and gt j that have an event of the other
    within +/-``window`` s, (hits_pred + hits_gt) / (n_pred + n_gt); 0 when either has none.
    (For well separated events this is the one-to-one event F-measure.)"""
    hp = _hits(pred_events, gt_events, window)
    hg = _hits(gt_events, pred_events, window).T
    n_p = np.array([len(e) for e in pred_events], float)[:, None]
    n_g = np.array([len(e) for e in gt_events], float)[None, :]
    total = n_p + n_g
    s = np.divide(hp + hg, total, out=np.zeros_like(total), where=total > 0)
    s[(n_p == 0) | (n_g == 0)] = 0.0
    return s


def permutation_p(s, total: float) -> float:
    """One-sided p of ``total`` = sum_i S[i, pi(i)] for a fixed pi against the sums over uniformly
    random permutations, by Hoeffding's combinatorial central limit theorem: mean n * mean(S),
    variance sum_ij d_ij^2 / (n - 1) with d the double-centred S. 1.0 when that variance is 0
    (rows all alike: no pairing can be better than another)."""
    from scipy.special import ndtr

    s = np.asarray(s, float)
    n = len(s)
    d = s - s.mean(axis=1, keepdims=True) - s.mean(axis=0, keepdims=True) + s.mean()
    var = float((d * d).sum()) / (n - 1)
    if var <= 1e-12:
        return 1.0
    return float(ndtr(-(total - n * s.mean()) / np.sqrt(var)))


def pairing_test(s, *, seed: int = 0, n_null: int = N_NULL) -> dict:
    """The test of the module docstring on a similarity matrix (rows: predictions, columns:
    their gts, both in the given order)."""
    from scipy.optimize import linear_sum_assignment

    s = np.asarray(s, float)
    n = len(s)
    idx = np.arange(n)
    p_own = permutation_p(s, float(np.trace(s)))
    shift_p = [permutation_p(s, float(s[idx, (idx + k) % n].sum())) for k in range(1, n)]
    k_best = int(np.argmin(shift_p)) + 1
    p_shift = min(1.0, (n - 1) * shift_p[k_best - 1])  # Bonferroni over the n - 1 shifts
    rows, cols = linear_sum_assignment(s, maximize=True)
    best = float(s[rows, cols].mean())
    moved = int((cols != rows).sum())
    p_structure = None  # the null is drawn only when it decides: own pairing no better, no shift
    if p_own >= ALPHA and p_shift >= ALPHA and moved >= n / 2:
        rng = np.random.default_rng(seed)
        null_best = np.empty(n_null)
        for k in range(n_null):
            shuffled = rng.permuted(s, axis=1)
            r, c = linear_sum_assignment(shuffled, maximize=True)
            null_best[k] = shuffled[r, c].mean()
        p_structure = float((1 + np.sum(null_best >= best)) / (1 + n_null))
    other = p_shift < ALPHA or (p_structure is not None and p_structure < ALPHA)
    shifted = bool(p_own >= ALPHA and other)
    out = {"n": n, "mean_own": float(np.trace(s) / n), "p_own": p_own,
           "best_shift": k_best, "mean_best_shift": float(s[idx, (idx + k_best) % n].mean()), "p_shift": p_shift,
           "mean_best_assignment": best, "clips_moved": moved, "p_structure": p_structure, "shifted": shifted}
    if p_shift < ALPHA:
        out["best_match"] = {int(i): int((i + k_best) % n) for i in idx}
    else:
        out["best_match"] = {int(i): int(j) for i, j in zip(rows, cols) if i != j}
    return out


def pairing_check(per_clip, *, seed: int = 0) -> dict:
    """The shifted-pairing section of a result from its per-clip event times."""
    rows = [r for r in per_clip if isinstance(r.get("gt_events"), list) and isinstance(r.get("pred_events"), list)]
    if len(rows) < 4:
        return {"status": "skipped", "reason": "fewer than 4 clips with event times"}
    if len(rows) > MAX_CLIPS:
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), MAX_CLIPS, replace=False))
        rows = [rows[i] for i in keep]
    s = similarity_matrix([r["pred_events"] for r in rows], [r["gt_events"] for r in rows])
    test = pairing_test(s, seed=seed)
    ids = [r["id"] for r in rows]
    test["best_match"] = {ids[i]: ids[j] for i, j in test["best_match"].items()}
    out = {"status": "ok", "meta": {"similarity": f"share of events with a counterpart within +/-{WINDOW * 1000:g} ms",
                                    "alpha": ALPHA, "null_draws": N_NULL, "seed": seed,
                                    "sampled": len(rows) < len(per_clip)}, "summary": test, "warnings": []}
    if test["shifted"]:
        pairs = ", ".join(f"{a}->{b}" for a, b in list(test["best_match"].items())[:3])
        out["warnings"].append(
            f"pairing looks shifted: {test['clips_moved']} of {test['n']} predictions match another clip's gt "
            f"better than their own (mean F {max(test['mean_best_assignment'], test['mean_best_shift']):.2f} vs "
            f"{test['mean_own']:.2f} for the given pairing), e.g. {pairs}; check how files are paired")
    return out


def run_flags(doc: dict) -> list:
    """Short flags of a result document (any schema): what a reader of a leaderboard row must know."""
    flags = []
    sections = doc.get("sections") if isinstance(doc.get("sections"), dict) else {}
    sanity = sections.get("sanity") if isinstance(sections.get("sanity"), dict) else {}
    summary = sanity.get("summary") if isinstance(sanity.get("summary"), dict) else {}
    n = summary.get("n")
    for key, word in (("n_pred_silent", "silent"), ("n_pred_flat", "flat"), ("n_pred_quiet", "much quieter")):
        count = summary.get(key)
        if isinstance(count, int) and count > 0:
            flags.append(f"{word} {count}/{n}")
    if summary.get("same_output_for_every_clip") is True:
        flags.append("identical predictions")
    excluded = doc.get("excluded")
    count = excluded.get("count") if isinstance(excluded, dict) else len(excluded) if isinstance(excluded, list) else 0
    if isinstance(count, int) and count > 0:
        flags.append(f"excluded {count}")
    per_clip = doc.get("per_clip") if isinstance(doc.get("per_clip"), list) else []
    acted = sum(1 for r in per_clip if isinstance(r, dict) and r.get("length_action") not in (None, "none"))
    if acted:
        flags.append(f"length policy {acted}/{len(per_clip)}")
    pairing = sections.get("pairing") if isinstance(sections.get("pairing"), dict) else {}
    if (pairing.get("summary") or {}).get("shifted") is True:
        flags.append("pairing looks shifted")
    return flags
