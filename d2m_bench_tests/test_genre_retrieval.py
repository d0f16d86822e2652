"""Nearest-neighbour retrieval, votes and accuracy on hand-checkable sets."""
import numpy as np
import pytest

from d2m_bench.metrics.retrieval import accuracy_report, confusion_matrix, nearest_neighbours, vote


def test_hand_checked_1d_set():
    # Database on a line: x = 0, 1, 5, 9, 10 with labels A A B C C (0 0 1 2 2).
    db = np.array([[0.0], [1.0], [5.0], [9.0], [10.0]])
    labels = np.array([0, 0, 1, 2, 2])
    q = np.array([[0.2], [4.0], [8.0], [6.0], [100.0]])
    idx, dist = nearest_neighbours(q, db, k=1)
    # 0.2 -> 0 (d .2); 4 -> 5 (d 1); 8 -> 9 (d 1); 6 -> 5 (d 1); 100 -> 10 (d 90)
    assert idx[:, 0].tolist() == [0, 2, 3, 2, 4]
    np.testing.assert_allclose(dist[:, 0], [0.2, 1.0, 1.0, 1.0, 90.0])
    true = np.array([0, 1, 1, 2, 2])
    rep = accuracy_report(true, labels[idx[:, 0]], n_classes=3)
    # predictions A B C B C vs truth A B B C C: 3 of 5 right; B: 1/2, C: 1/2.
    assert rep["accuracy"] == pytest.approx(0.6)
    assert rep["per_class"] == [1.0, 0.5, 0.5]
    assert rep["confusion"] == [[1, 0, 0], [0, 1, 1], [0, 1, 1]]


def test_ties_go_to_the_lowest_index():
    # 2-D: the query (0, 0) is at distance 1 from four points; rows 3, 1, 4, 2 (order shuffled).
    db = np.array([[5.0, 5.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0]])
    idx, dist = nearest_neighbours([[0.0, 0.0]], db, k=3)
    assert idx.tolist() == [[1, 2, 3]] and dist.tolist() == [[1.0, 1.0, 1.0]]
    # Exact duplicates far from the origin, where the expanded form rounds differently.
    big = np.full((6, 16), 1e6) + np.arange(16) * 0.5
    big[[1, 3, 5]] += 1e-3
    idx, _ = nearest_neighbours(big[[1]], big, k=3, block_bytes=8 * 2)  # one database row per block
    assert idx.tolist() == [[1, 3, 5]]


def test_exclude_own_entry():
    db = np.array([[0.0], [0.5], [3.0]])
    idx, dist = nearest_neighbours([[0.0], [3.0]], db, k=1, exclude=[0, -1])
    assert idx[:, 0].tolist() == [1, 2] and dist[:, 0].tolist() == [0.5, 0.0]


def test_majority_of_k():
    # Neighbour labels nearest first.
    L = np.array([[1, 2, 2], [3, 1, 2], [1, 1, 2], [2, 1, 1, 2]][:3])
    assert vote(L).tolist() == [2, 3, 1]  # majority 2; three-way tie -> nearest; majority 1
    assert vote(np.array([[2, 1, 1, 2]])).tolist() == [2]  # 2-2 tie -> label of the nearest
    assert vote(L, k=1).tolist() == [1, 3, 1]
    # Through retrieval: query at 0; nearest 3: idx 0 (A, d 1), 1 (B, d 2), 2 (B, d 3) -> B by majority.
    db = np.array([[1.0], [2.0], [-3.0], [10.0]])
    idx, _ = nearest_neighbours([[0.0]], db, k=3)
    assert vote(np.array(["A", "B", "B", "A"])[idx]).tolist() == ["B"]


@pytest.mark.parametrize("k", [1, 5])
def test_chunked_equals_brute_force(k):
    rng = np.random.default_rng(k)
    Q = rng.normal(size=(40, 32)).astype(np.float32)
    X = rng.normal(size=(3000, 32)).astype(np.float32)
    X[1500:1510] = X[100:110]  # duplicates: ties must go to the lower index
    idx, dist = nearest_neighbours(Q, X, k=k, block_bytes=40 * 8 * 97)
    Qd, Xd = Q.astype(np.float64), X.astype(np.float64)
    D = np.sqrt(((Qd[:, None] - Xd[None]) ** 2).sum(-1))
    ref = np.argsort(D, axis=1, kind="stable")[:, :k]
    assert (idx == ref).all()
    np.testing.assert_allclose(dist, np.take_along_axis(D, ref, 1), rtol=1e-12)


def test_bad_shapes_and_k():
    with pytest.raises(ValueError):
        nearest_neighbours(np.zeros((2, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        nearest_neighbours(np.zeros((1, 2)), np.zeros((2, 2)), k=3)


def test_confusion_counts():
    m = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], n_classes=4)
    assert m.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert accuracy_report([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], n_classes=4)["per_class"][3] is None


def _brute_force(Q, X, k, exclude=None):
    Qd, Xd = np.asarray(Q, np.float64), np.asarray(X, np.float64)
    D = np.sqrt(((Qd[:, None] - Xd[None]) ** 2).sum(-1))
    if exclude is not None:
        for qi, xi in enumerate(exclude):
            if xi >= 0:
                D[qi, xi] = np.inf
    ref = np.argsort(D, axis=1, kind="stable")[:, :k]  # stable: equal distances keep index order
    return ref, np.take_along_axis(D, ref, 1)


@pytest.mark.parametrize("k", [1, 3])
def test_tie_heavy_database_equals_brute_force(k):
    # Long runs of identical rows (silent clips, duplicated music) spread over many blocks,
    # plus queries that equal database rows (distance 0 ties) and an excluded own entry.
    rng = np.random.default_rng(10 + k)
    base = rng.normal(size=(5, 8))
    X = base[rng.integers(0, 5, size=2000)]
    X[::7] = rng.normal(size=X[::7].shape)
    Q = np.concatenate([base, X[[3, 500, 1999]], rng.normal(size=(4, 8))])
    exclude = np.full(len(Q), -1)
    exclude[6] = 500
    block = 8 * (len(Q) + 8) * 37  # 37 database rows per block
    idx, dist = nearest_neighbours(Q, X, k=k, exclude=exclude, block_bytes=block)
    ref, ref_d = _brute_force(Q, X, k, exclude)
    assert (idx == ref).all()
    np.testing.assert_allclose(dist, ref_d, rtol=1e-12, atol=0)


def test_identical_database_memory_stays_near_the_block_size():
    # 3 queries x 20,000 identical rows: every row ties, so every pair is shortlisted. An
    # implementation that keeps all tied candidates until the end materialises a
    # (60,000 x 128) float64 difference (61 MB); the running top k needs only block-sized
    # temporaries.
    import tracemalloc

    d, n, block = 128, 20_000, 256 << 10
    X = np.ones((n, d))
    Q = np.stack([np.zeros(d), np.ones(d), np.full(d, 3.0)])
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    idx, dist = nearest_neighbours(Q, X, k=2, block_bytes=block)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert idx.tolist() == [[0, 1]] * 3
    np.testing.assert_allclose(dist, [[np.sqrt(d)] * 2, [0.0, 0.0], [2 * np.sqrt(d)] * 2])
    assert peak < 3 * block, f"peak {peak} bytes for a {block}-byte block"
