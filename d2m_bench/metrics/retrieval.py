"""Nearest-neighbour retrieval and classification accuracy (genre accuracy, spec section 2).

Distance: Euclidean, d(q, x) = sqrt(sum_j (q_j - x_j)^2), in float64. Neighbours are ordered
by (distance, database index), so equal distances resolve to the lowest index.

Large databases are scanned in blocks with the expansion ||q||^2 - 2 q.x + ||x||^2 (one
matrix product per block); that form carries rounding error of order
(d + 2) * eps * (||q||^2 + ||x||^2), so it only shortlists candidates within a safety margin
of the block's and the running k-th best. Each block's shortlist gets exact (difference form)
distances at once, in slices, and is merged into a running top k per query ordered by (exact
distance, index). The full query x database matrix is never held, and working memory stays
within a small multiple of ``block_bytes`` even when thousands of database rows tie (silent
clips, duplicated music), where every tied row is shortlisted.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def nearest_neighbours(queries: ArrayLike, database: ArrayLike, *, k: int = 1, exclude: ArrayLike | None = None,
                       block_bytes: int = 32 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of the ``k`` nearest database rows to each query.

    Parameters: ``queries`` (q, d), ``database`` (n, d); ``exclude`` optional (q,) database
    index per query to leave out (-1 for none), e.g. the query's own entry.
    Returns ``(indices (q, k) int64, distances (q, k) float64)``, each row sorted by
    (distance, index). Working memory stays within a small multiple of ``block_bytes``
    (plus O(q (d + k)) for the queries and results), however many database rows tie.
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
    dim = Q.shape[1]
    # A block's distance matrix (q x rows) and its float64 database rows (rows x d) share
    # the budget, so few queries do not mean a huge database block.
    rows = max(1, block_bytes // (8 * (n_q + dim)))
    blocks = [(a, min(n_x, a + rows)) for a in range(0, n_x, rows)]
    # Exact distances are computed for at most `pairs` shortlisted pairs at a time: the
    # (pairs, d) float64 temporaries then stay near a quarter of a block.
    pairs = max(1, block_bytes // (4 * 8 * max(dim, 1)))
    q_sq = np.einsum("ij,ij->i", Q, Q)
    x_sq_max = max(_sq_norms(X[a:b]).max() for a, b in blocks)  # per-block norms recomputed below
    eps = np.finfo(np.float64).eps
    # Twice the worst-case error of one expanded distance: both the candidate and the
    # threshold it is compared with may be off by it.
    margin = 4.0 * (dim + 2) * eps * (q_sq + x_sq_max) + np.finfo(np.float64).tiny
    # Running k best per query, exact, sorted by (distance, index); index n_x = empty slot.
    top_d = np.full((n_q, k), np.inf)
    top_i = np.full((n_q, k), n_x, dtype=np.int64)
    for start, stop in blocks:
        Xb = X[start:stop].astype(np.float64, copy=False)
        D = Q @ Xb.T
        D *= -2.0
        D += q_sq[:, None]
        D += np.einsum("ij,ij->i", Xb, Xb)[None, :]
        own = np.nonzero((exclude >= start) & (exclude < stop))[0]
        D[own, exclude[own] - start] = np.inf
        kth = _kth_smallest(D, min(k, stop - start))
        # A row can enter the top k only if its exact distance is within the block's k
        # best and no larger than the running k-th best (equal loses: its index is higher).
        limit = np.minimum(kth, top_d[:, k - 1] ** 2) + margin
        mask = D <= limit[:, None]
        mask[own, exclude[own] - start] = False
        del D
        flat_mask = mask.ravel()
        # Tie-heavy blocks shortlist many pairs: walk the mask in slices of `pairs` entries
        # so that no temporary grows with the number of ties.
        step = flat_mask.size if np.count_nonzero(flat_mask) <= pairs else pairs
        for s in range(0, flat_mask.size, step):
            flat = np.flatnonzero(flat_mask[s:s + step]) + s
            if flat.size:
                qi, xi = np.divmod(flat, stop - start)
                diff = Xb[xi]
                np.subtract(Q[qi], diff, out=diff)
                exact = np.sqrt(np.einsum("ij,ij->i", diff, diff))
                del diff
                _merge(top_d, top_i, qi, xi + start, exact)
    return top_i, top_d


def _kth_smallest(D, kk):
    """k-th smallest value of each row, partitioning a few rows at a time (np.partition
    copies its input; a whole-block copy would double the peak memory)."""
    out = np.empty(len(D))
    step = max(1, len(D) // 8)
    for a in range(0, len(D), step):
        out[a:a + step] = np.partition(D[a:a + step], kk - 1, axis=1)[:, kk - 1]
    return out


def _merge(top_d, top_i, qi, xi, dist):
    """Update the running top k in place with candidate pairs (query qi, row xi, exact
    distance dist); only the queries that have candidates are re-sorted."""
    k = top_d.shape[1]
    uq, group = np.unique(qi, return_inverse=True)
    all_g = np.concatenate([np.repeat(np.arange(len(uq)), k), group])
    all_x = np.concatenate([top_i[uq].ravel(), xi])
    all_d = np.concatenate([top_d[uq].ravel(), dist])
    order = np.lexsort((all_x, all_d, all_g))
    # Each query brings its k current entries, so its sorted run has at least k.
    first = np.searchsorted(all_g[order], np.arange(len(uq)))
    take = order[first[:, None] + np.arange(k)[None, :]]
    top_d[uq], top_i[uq] = all_d[take], all_x[take]


def _sq_norms(block):
    b = block.astype(np.float64)
    return np.einsum("ij,ij->i", b, b)


def vote(neighbour_labels: ArrayLike, *, k: int | None = None) -> np.ndarray:
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


def confusion_matrix(true: ArrayLike, predicted: ArrayLike, *, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts; row = true class index, column = predicted."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return m


def accuracy_report(true: ArrayLike, predicted: ArrayLike, *, n_classes: int) -> dict:
    """Accuracy = correct / total; per-class accuracy (recall) = diag / row sum (None for a
    class with no query); plus the confusion matrix."""
    m = confusion_matrix(true, predicted, n_classes=n_classes)
    rows = m.sum(axis=1)
    return {"accuracy": float(np.trace(m) / m.sum()) if m.sum() else float("nan"),
            "per_class": [float(m[i, i] / rows[i]) if rows[i] else None for i in range(n_classes)],
            "support": rows.tolist(), "confusion": m.tolist()}
