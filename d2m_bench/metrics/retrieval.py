"""Nearest-neighbour retrieval and classification accuracy (genre accuracy, spec section 2).

Distance: Euclidean, d(q, x) = sqrt(sum_j (q_j - x_j)^2), in float64. Neighbours are ordered
by (distance, database index), so equal distances resolve to the lowest index.

Large databases are scanned in blocks with the expansion ||q||^2 - 2 q.x + ||x||^2 (one
matrix product per block); that form carries rounding error of order
(d + 2) * eps * (||q||^2 + ||x||^2), so it only shortlists candidates within a safety margin
of the running k-th best, and the final order uses the exact difference form on the
shortlist. The full query x database matrix is never held at once.
"""
from __future__ import annotations

import numpy as np


def nearest_neighbours(queries, database, *, k=1, exclude=None, block_bytes=32 << 20):
    """Indices and distances of the ``k`` nearest database rows to each query.

    Parameters: ``queries`` (q, d), ``database`` (n, d); ``exclude`` optional (q,) database
    index per query to leave out (-1 for none), e.g. the query's own entry.
    Returns ``(indices (q, k) int64, distances (q, k) float64)``, each row sorted by
    (distance, index).
    """
    Q = np.asarray(queries, dtype=np.float64)
    X = np.asarray(database)  # converted to float64 block by block, not all at once
    if Q.ndim != 2 or X.ndim != 2 or Q.shape[1] != X.shape[1]:
        raise ValueError(f"queries {Q.shape} and database {X.shape} must be (q, d) and (n, d)")
    n_q, n_x = len(Q), len(X)
    n_valid = n_x - (0 if exclude is None else 1)
    if not 1 <= k <= n_valid:
        raise ValueError(f"k = {k} needs 1 <= k <= {n_valid} database rows")
    exclude = np.full(n_q, -1) if exclude is None else np.asarray(exclude, dtype=np.int64)
    rows = max(1, block_bytes // (8 * max(n_q, 1)))
    blocks = [(a, min(n_x, a + rows)) for a in range(0, n_x, rows)]
    q_sq = np.einsum("ij,ij->i", Q, Q)
    x_sq = np.concatenate([_sq_norms(X[a:b]) for a, b in blocks])
    eps = np.finfo(np.float64).eps
    # Twice the worst-case error of one expanded distance: both the candidate and the
    # current k-th best may be off by it.
    margin = 4.0 * (Q.shape[1] + 2) * eps * (q_sq + x_sq.max()) + np.finfo(np.float64).tiny
    best = np.full((n_q, k), np.inf)  # running k smallest expanded distances per query
    cand_q, cand_x, cand_v = [], [], []
    for start, stop in blocks:
        D = Q @ X[start:stop].astype(np.float64).T
        D *= -2.0
        D += q_sq[:, None]
        D += x_sq[None, start:stop]
        own = (exclude >= start) & (exclude < stop)
        D[np.nonzero(own)[0], exclude[own] - start] = np.inf
        kk = min(k, stop - start)
        part = np.partition(D, kk - 1, axis=1)[:, :kk]
        best = np.partition(np.concatenate([best, part], axis=1), k - 1, axis=1)[:, :k]
        qi, xi = np.nonzero(D <= (best[:, k - 1] + margin)[:, None])
        cand_q.append(qi)
        cand_x.append(xi + start)
        cand_v.append(D[qi, xi])
    qi, xi, v = (np.concatenate(a) for a in (cand_q, cand_x, cand_v))
    keep = v <= best[qi, k - 1] + margin[qi]  # thresholds only fall: prune early arrivals
    qi, xi = qi[keep], xi[keep]
    diff = Q[qi] - X[xi].astype(np.float64)
    exact = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    order = np.lexsort((xi, exact, qi))
    qi, xi, exact = qi[order], xi[order], exact[order]
    first = np.searchsorted(qi, np.arange(n_q))
    take = first[:, None] + np.arange(k)[None, :]
    return xi[take], exact[take]


def _sq_norms(block):
    b = block.astype(np.float64)
    return np.einsum("ij,ij->i", b, b)


def vote(neighbour_labels, *, k=None):
    """Label per query from its neighbours' labels (rows ordered nearest first).

    k = 1: the nearest label. Otherwise majority of the first ``k``; a tie between labels
    goes to the one whose nearest member comes first (so the result is deterministic and
    equals the 1-NN label when all k labels differ).
    """
    L = np.asarray(neighbour_labels)
    k = L.shape[1] if k is None else k
    out = []
    for row in L[:, :k]:
        values, first, counts = np.unique(row, return_index=True, return_counts=True)
        top = counts == counts.max()
        out.append(values[top][np.argmin(first[top])])
    return np.asarray(out, dtype=L.dtype)


def confusion_matrix(true, predicted, *, n_classes):
    """(n_classes, n_classes) counts; row = true class index, column = predicted."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return m


def accuracy_report(true, predicted, *, n_classes):
    """Accuracy = correct / total; per-class accuracy (recall) = diag / row sum (None for a
    class with no query); plus the confusion matrix."""
    m = confusion_matrix(true, predicted, n_classes=n_classes)
    rows = m.sum(axis=1)
    return {"accuracy": float(np.trace(m) / m.sum()) if m.sum() else float("nan"),
            "per_class": [float(m[i, i] / rows[i]) if rows[i] else None for i in range(n_classes)],
            "support": rows.tolist(), "confusion": m.tolist()}
