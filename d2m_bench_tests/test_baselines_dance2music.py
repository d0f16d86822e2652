"""Dance2Music re-implementation: matrices, reward, beam search against brute force, features, notes."""
import itertools

import numpy as np
import pytest

from d2m_bench.baselines import dance2music as d2m


def alternating_dance(n_notes, *, frames_per_note=6):
    """Features of a dance that switches between two orthogonal poses at every note."""
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    return np.stack([a if (t // frames_per_note) % 2 == 0 else b for t in range(n_notes * frames_per_note)])


def brute_force(D, n_notes, *, start=2, n_states=5):
    """Every melody starting with ``start`` scored on the whole of D the plain way."""
    best, arg = -np.inf, []
    for tail in itertools.product(range(n_states), repeat=n_notes - 1):
        seq = (start, *tail)
        r = d2m.window_reward(D, seq)
        if r > best + 1e-12:
            best, arg = r, [seq]
        elif abs(r - best) <= 1e-12:
            arg.append(seq)
    return best, arg


def test_music_matrix_is_quantised_like_upstream_uint8():
    m = d2m.music_matrix([0, 1, 2, 3, 4])
    # 255 * (1 - d/4) = 255, 191.25, 127.5, 63.75, 0 -> uint8 truncation
    assert np.allclose(m[0] * 255, [255, 191, 127, 63, 0])
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1.0)


def test_nearest_index_matches_pil_nearest_resize():
    Image = pytest.importorskip("PIL.Image")
    for src, dst in [(3, 18), (10, 60), (7, 50), (4, 4), (9, 61)]:
        img = np.arange(src * src, dtype=np.uint8).reshape(src, src)
        pil = np.array(Image.fromarray(img).resize((dst, dst), Image.NEAREST))
        idx = d2m.nearest_index(src, dst)
        assert np.array_equal(pil, img[np.ix_(idx, idx)]), (src, dst)


def test_dance_matrix_is_cosine_similarity_and_zero_rows_give_zero():
    f = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [-2.0, 0.0]])
    D = d2m.dance_matrix(f)
    assert D[0, 1] == pytest.approx(1 / np.sqrt(2))
    assert D[0, 3] == pytest.approx(-1.0)
    assert np.all(D[2] == 0) and np.all(D[:, 2] == 0)


def test_block_pearson_equals_pearson_on_the_upsampled_matrix():
    rng = np.random.default_rng(1)
    D = d2m.dance_matrix(rng.normal(size=(70, 6)))
    for size, h in [(60, 10), (13, 2), (37, 7)]:
        window = D[5:5 + size, 5:5 + size]
        cand = rng.integers(0, 5, (40, h))
        fast = d2m.batch_rewards(window, cand)
        slow = [d2m.window_reward(window, c) for c in cand]
        assert np.allclose(fast, slow, atol=1e-12)


def test_reward_is_zero_on_constant_windows():
    flat = np.ones((12, 12))
    assert np.all(d2m.batch_rewards(flat, np.array([[0, 4], [1, 3]])) == 0.0)
    assert d2m.window_reward(flat, [0, 4]) == 0.0
    varied = d2m.dance_matrix(np.random.default_rng(0).normal(size=(12, 3)))
    same = np.array([[3, 3], [0, 0]])  # one state throughout: the music matrix is constant
    assert np.all(d2m.batch_rewards(varied, same) == 0.0)
    assert d2m.window_reward(varied, [3, 3]) == 0.0


def test_alternating_dance_gives_alternating_melody_with_reward_one():
    n = 4
    D = d2m.dance_matrix(alternating_dance(n))
    # D is 1 within a pose and 0 across; an alternating melody s, t, s, t has M = 1 within and
    # 1 - |s - t| / 4 across: two-level, same pattern, so Pearson r = 1 for any t != s.
    res = d2m.beam_search(D)
    s = res.states
    assert s[0] == 2 and s[1] != 2 and s[2] == 2 and s[3] == s[1]
    assert res.reward == pytest.approx(1.0)
    assert res.correlation == pytest.approx(1.0)
    best, arg = brute_force(D, n)
    assert best == pytest.approx(1.0)
    assert tuple(s) in arg
    assert all(a[0::2] == (2, 2) and a[1] == a[3] != 2 for a in arg)  # every optimum alternates


def test_rank_breaks_ties_by_candidate_order_after_rounding():
    r = np.array([0.5, 0.7, 0.7 + 1e-16, 0.2, 0.7, 0.7 - 3e-12, 0.9])
    # 0.7, 0.7 + 1e-16 and 0.7 are one tie (candidate order 1, 2, 4); 0.7 - 3e-12 is below it
    assert d2m.rank(r, 10).tolist() == [6, 1, 2, 4, 5, 0, 3]
    assert d2m.rank(r, 3).tolist() == [6, 1, 2]
    assert d2m.rank(r[::-1], 4).tolist() == [0, 2, 4, 5]  # order of appearance, not of value noise


def test_mirror_melodies_tie_and_the_documented_one_wins():
    # In the alternating dance every melody 2, t, 2, t (t != 2) has reward 1: 2,0,2,0 and its
    # mirror 2,4,2,4 (and 2,1,2,1 / 2,3,2,3) tie at every step. Candidates are generated beam by
    # beam, state by state, so the rule picks the lowest state: 2,0,2,0. Upstream's
    # np.argsort(...)[::-1] would pick 2,4,2,4 where its sort is stable (arrays of <= 16 values).
    D = d2m.dance_matrix(alternating_dance(4))
    assert d2m.window_reward(D, [2, 0, 2, 0]) == d2m.window_reward(D, [2, 4, 2, 4]) == pytest.approx(1.0)
    for width in (50, 4, 1):
        assert d2m.beam_search(D, beam_width=width).states == [2, 0, 2, 0]
    # the rule also holds through a longer search: same output on every call, ties and all
    long = d2m.dance_matrix(alternating_dance(30))
    assert d2m.beam_search(long).states == [2] + [0, 2] * 14 + [0]


@pytest.mark.parametrize("n_notes,beam", [(3, 50), (4, 50), (5, 125)])
def test_beam_search_matches_brute_force_when_the_beam_holds_everything(n_notes, beam):
    # With N <= history the last window is the whole of D, and a beam of 5^(N-2) or more keeps
    # every prefix, so the output must be a global optimum over melodies starting at state 2.
    rng = np.random.default_rng(n_notes)
    D = d2m.dance_matrix(rng.normal(size=(n_notes * 6, 5)))
    res = d2m.beam_search(D, beam_width=beam)
    best, arg = brute_force(D, n_notes)
    assert res.reward == pytest.approx(best, abs=1e-12)
    assert tuple(res.states) in arg


def test_beam_search_windows_follow_upstream_indices():
    # T = 120, N = 20, history 10: the step that adds note k scores D[s - 60 : s, s - 60 : s]
    # with s = 6 (k + 1) once s > 60. A dance that alternates only after frame 60 can only be
    # scored through those windows; the first 10 notes see a constant (still) dance -> reward 0.
    still = np.tile([1.0, 0.0], (60, 1))
    feats = np.concatenate([still, alternating_dance(10)])
    res = d2m.beam_search(d2m.dance_matrix(feats))
    assert len(res.states) == 20
    tail = res.states[10:]
    assert tail[0::2] == [tail[0]] * 5 and tail[1::2] == [tail[1]] * 5 and tail[0] != tail[1]
    assert res.reward == pytest.approx(1.0)


def test_pose_features_dims_normalisation_and_interpolation():
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(100, 500, (5, 25, 2)), np.ones((5, 25, 1))], -1)
    feats, n = d2m.pose_features(kp, layout="body25")
    assert feats.shape == (5, 36) and n == 0
    assert np.abs(feats).max() == pytest.approx(1.0)  # larger bounding-box side spans [-1, 1]
    shifted, _ = d2m.pose_features(kp + np.array([40.0, -25.0, 0.0]), layout="body25")
    assert np.allclose(shifted, feats)  # per-frame normalisation removes translation
    coco = np.concatenate([rng.uniform(0, 1, (5, 17, 2)), np.ones((5, 17, 1))], -1)
    assert d2m.pose_features(coco, layout="coco17")[0].shape == (5, 34)
    coco[2] = 0.0  # no person in frame 2 (OpenPose writes zeros)
    feats, n = d2m.pose_features(coco, layout="coco17")
    assert n == 1
    assert np.allclose(feats[2], (feats[1] + feats[3]) / 2)


def test_melody_notes_merge_repeats_with_upstream_timing():
    notes = d2m.melody_notes([2, 2, 0, 0, 0, 4])
    assert [(p, round(s, 6), round(e, 6), v) for p, s, e, v in notes] == [
        (64, 0.2, 0.6, 100), (60, 0.6, 1.2, 100), (69, 1.2, 1.4, 100)]
    assert d2m.qpm() == 75.0


def test_too_short_dance_gives_no_notes():
    res = d2m.beam_search(np.ones((5, 5)))
    assert res.states == [] and d2m.melody_notes(res.states) == []
