"""Warnings that travel with a result to the leaderboard, and the shifted-pairing test.

A number on a leaderboard is read without the run's terminal output, so what eval warned
about must reach the row: near-silent, flat, much quieter or identical predictions (the
sanity section), clips excluded from a metric, length-policy actions, and a pairing that looks
shifted. :func:`run_flags` derives them from a result document, old or new.

Shifted pairing (:func:`pairing_check`). A pipeline that pairs files by position can score
every prediction against another clip's gt. S[i, j] is the share of the events of prediction i
and gt j that have an event of the other within +/-70 ms (the tolerance window; for well
separated events the one-to-one event F-measure). The pairing looks shifted when

1. the given pairing is no better than a random one: the one-sided p of sum_i S[i, i] against
   the sums over uniformly random permutations (Hoeffding's combinatorial central limit
   theorem: mean n * mean(S), variance sum d_ij^2 / (n - 1), d the double-centred S) is at
   least ALPHA; and
2. another pairing is: either a cyclic shift k of the clip order whose sum has p < ALPHA after
   a Bonferroni correction over the n - 1 shifts, or the best one-to-one assignment of
   predictions to gts (Hungarian, scipy.optimize.linear_sum_assignment) that moves at least half
   of them and beats the best assignments of N_NULL row-shuffled matrices (each row's entries
   permuted: no pairing structure) at p < ALPHA. The assignment
   route runs only when 3/4 of the predictions are in mutual-best pairs with another clip's gt
   (about half are, by chance, without any structure).
A constant or input-independent output (a metronome, noise) has no pairing structure and is
not flagged; a good system, correctly paired, has structure that the given pairing explains.
Beyond MAX_CLIPS clips the test runs on a seeded block of MAX_CLIPS consecutive clips (in the
given order): a shift of the order survives in it, a pairing deranged across the whole set
only in part.
"""
from __future__ import annotations

import numpy as np

ALPHA = 0.01
N_NULL = 100  # p_structure >= 1/101: still below ALPHA when no shuffle reaches the observed maximum
MAX_CLIPS = 300  # beyond this a seeded block of consecutive clips is tested (S is n x n)
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


def permutation_p(s, total: float, var: float | None = None) -> float:
    """One-sided p of ``total`` = sum_i S[i, pi(i)] for a fixed pi against the sums over uniformly
    random permutations, by Hoeffding's combinatorial central limit theorem: mean n * mean(S),
    variance sum_ij d_ij^2 / (n - 1) with d the double-centred S (``var``, when already known).
    1.0 when that variance is 0 (rows all alike: no pairing can be better than another)."""
    from scipy.special import ndtr

    s = np.asarray(s, float)
    n = len(s)
    if var is None:
        d = s - s.mean(axis=1, keepdims=True) - s.mean(axis=0, keepdims=True) + s.mean()
        var = float((d * d).sum()) / (n - 1)
    if var <= 1e-12:
        return 1.0
    return float(ndtr(-(total - n * s.mean()) / np.sqrt(var)))


def mutual_best(s) -> int:
    """How many predictions i have a gt j != i that is the best of row i and whose best row is i."""
    s = np.asarray(s, float)
    rows, cols = np.arange(len(s)), s.argmax(axis=1)
    return int(((cols != rows) & (s.argmax(axis=0)[cols] == rows)).sum())


def pairing_test(s, *, seed: int = 0, n_null: int = N_NULL) -> dict:
    """The test of the module docstring on a similarity matrix (rows: predictions, columns:
    their gts, both in the given order). The assignment route runs only when it can decide: the
    given pairing no better than random, no significant shift, and at least 3/4 of the
    predictions in mutual-best pairs with another clip's gt (about half under no structure)."""
    s = np.asarray(s, float)
    n = len(s)
    idx = np.arange(n)
    d = s - s.mean(axis=1, keepdims=True) - s.mean(axis=0, keepdims=True) + s.mean()
    var = float((d * d).sum()) / (n - 1)
    p_own = permutation_p(s, float(np.trace(s)), var)
    out = {"n": n, "mean_own": float(np.trace(s) / n), "p_own": p_own, "best_shift": None, "mean_best_shift": None,
           "p_shift": None, "mutual_best": mutual_best(s), "mean_best_assignment": None, "clips_moved": None,
           "p_structure": None, "shifted": False, "best_match": {}}
    if p_own < ALPHA:  # the given pairing explains the structure: nothing more to test
        return out
    k = np.arange(1, n)
    sums = s[idx[None, :], (idx[None, :] + k[:, None]) % n].sum(axis=1)  # sum_i S[i, i + k], every shift k
    k_best = int(k[np.argmax(sums)])
    p_best = permutation_p(s, float(sums.max()), var)
    out.update(best_shift=k_best, mean_best_shift=float(sums.max() / n),
               p_shift=min(1.0, (n - 1) * p_best))  # Bonferroni over the n - 1 shifts
    if out["p_shift"] < ALPHA:
        out.update(shifted=True, best_match={int(i): int((i + k_best) % n) for i in idx})
        return out
    if out["mutual_best"] < 0.75 * n:
        return out
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(s, maximize=True)
    best = float(s[rows, cols].mean())
    rng = np.random.default_rng(seed)
    null_best = np.empty(n_null)
    for j in range(n_null):
        shuffled = rng.permuted(s, axis=1)
        nr, nc = linear_sum_assignment(shuffled, maximize=True)
        null_best[j] = shuffled[nr, nc].mean()
    out.update(mean_best_assignment=best, clips_moved=int((cols != rows).sum()),
               p_structure=float((1 + np.sum(null_best >= best)) / (1 + n_null)),
               best_match={int(i): int(j) for i, j in zip(rows, cols) if i != j})
    out["shifted"] = bool(out["p_structure"] < ALPHA and out["clips_moved"] >= n / 2)
    return out


def pairing_check(per_clip, *, seed: int = 0) -> dict:
    """The shifted-pairing section of a result from its per-clip event times."""
    rows = [r for r in per_clip if isinstance(r.get("gt_events"), list) and isinstance(r.get("pred_events"), list)]
    if len(rows) < 4:
        return {"status": "skipped", "reason": "fewer than 4 clips with event times"}
    if len(rows) > MAX_CLIPS:
        start = int(np.random.default_rng(seed).integers(0, len(rows) - MAX_CLIPS + 1))
        rows = rows[start:start + MAX_CLIPS]
    s = similarity_matrix([r["pred_events"] for r in rows], [r["gt_events"] for r in rows])
    test = pairing_test(s, seed=seed)
    ids = [r["id"] for r in rows]
    test["best_match"] = {ids[i]: ids[j] for i, j in test["best_match"].items()}
    out = {"status": "ok", "meta": {"similarity": f"share of events with a counterpart within +/-{WINDOW * 1000:g} ms",
                                    "alpha": ALPHA, "null_draws": N_NULL, "seed": seed,
                                    "sampled": len(rows) < len(per_clip)}, "summary": test, "warnings": []}
    if test["shifted"]:
        pairs = ", ".join(f"{a}->{b}" for a, b in list(test["best_match"].items())[:3])
        moved = test["clips_moved"] if test["clips_moved"] is not None else test["n"]
        other = test["mean_best_assignment"] if test["mean_best_assignment"] is not None else test["mean_best_shift"]
        out["warnings"].append(
            f"pairing looks shifted: {moved} of {test['n']} predictions match another clip's gt better than their "
            f"own (mean similarity {other:.2f} vs {test['mean_own']:.2f} for the given pairing), e.g. {pairs}; "
            "check how files are paired")
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
