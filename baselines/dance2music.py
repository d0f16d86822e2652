"""Dance2Music (Aggarwal & Parikh 2021, arXiv:2107.06252), the offline search-based system.

Re-implemented from the paper and gunagg/Dance2Music@984f64c (``offline/generate_music_BS.py``):

1. pose features f_t, one per 1/30 s (2-D keypoints flattened);
2. dance matrix D_tu = cos(f_t, f_u)  (T x T);
3. G = 5 states -> MIDI pitches 60, 62, 64, 67, 69 (C-major pentatonic), one note per 6 frames
   (0.2 s), N = floor(T / 6) notes;
4. music matrix M_ij = 1 - |s_i - s_j| / (G - 1) on state indices, quantised as upstream stores
   it (uint8(255 M) / 255) and nearest-neighbour upsampled to the size of the dance window;
5. reward = Pearson r of the flattened dance window and upsampled M (0 when either is constant);
6. beam search (width 50): the first note is state 2; step k (k = 1 .. N-1) expands every beam
   by all G states and scores only the last ``history`` = 10 notes against the window of D
   ending at frame s = floor(T (k + 1) / N), i.e. D[s - w : s, s - w : s] with
   w = min(s, floor(T * history / N)); the best ``beam_width`` survive (equal rewards: see
   ``rank``); the output is the best beam of the last step;
7. render: equal consecutive notes merge into one, 75 qpm (0.2 s per note), first note at
   0.2 s, velocity 100, program 0 (acoustic grand piano).

Deviations, all recorded in provenance: no 360-frame (12 s) cap; frames without a person are
interpolated instead of dropped (the upstream timeline shrinks, ours stays aligned with the
audio); keypoints are normalised per frame (centred on their bounding box, the larger side
scaled to [-1, 1]) because the built datasets store pixels without the image size that
OpenPose's ``--keypoint_scale 4`` uses; undetected joints in a detected frame are 0 after
normalisation (OpenPose writes 0 for them too). The Pearson r is computed on the h x h block
sums of the window, which equals r on the upsampled matrix up to float rounding (~1e-16).

Ties are common: a melody, its mirror image (s -> 4 - s) and its transpositions have the same
music matrix and so the same reward. Upstream ranks with ``np.argsort(rewards)[::-1]``, numpy's
default (unstable) sort, whose order among equal values depends on the numpy version and the
CPU (introsort, or x86-simd-sort where AVX-512 is available), so upstream itself picks different
melodies on different machines. Ours is explicit (``rank``, TIE_RULE), the same everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PITCHES = (60, 62, 64, 67, 69)
START_STATE = 2
NOTE_FRAMES = 6
FPS = 30.0
HISTORY = 10
BEAM_WIDTH = 50
VELOCITY = 100
PROGRAM = 0
START_OFFSET = 0.2  # seconds: upstream's start_time = 6 / 30
UPSTREAM = "gunagg/Dance2Music@984f64c"
TIE_DECIMALS = 12
TIE_RULE = (f"rewards rounded to {TIE_DECIMALS} decimals, stable descending sort: equal rewards keep "
            "candidate order (better-ranked beam first, then lower state)")
# BODY_25 columns upstream removes by default (no --no_openvino): MidHip (8) and the six foot points.
BODY25_DROPPED = (8, 19, 20, 21, 22, 23, 24)


# ----------------------------------------------------------------------------------------- features

def normalise_frame(xy, valid):
    """Centre one frame's detected joints on their bounding box; larger side spans [-1, 1]."""
    out = np.zeros_like(xy, dtype=np.float64)
    if not valid.any():
        return out
    pts = xy[valid]
    lo, hi = pts.min(0), pts.max(0)
    half = max(float((hi - lo).max()) / 2.0, 1e-9)
    out[valid] = (pts - (lo + hi) / 2.0) / half
    return out


def pose_features(keypoints, *, layout="coco17", drop_body25=True, min_score=0.0):
    """(T, J, 3) keypoints (x, y, score) -> (T, F) features and how many frames were filled.

    A joint is detected when its score > ``min_score`` and it is not at (0, 0) (OpenPose's
    marker for "not found"). Frames without any detected joint are linearly interpolated
    from their neighbours (nearest at the ends). Returns ``(features, n_interpolated)``.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] < 2:
        raise ValueError(f"keypoints must be (frames, joints, 3), got {kp.shape}")
    if layout == "body25" and drop_body25:
        if kp.shape[1] != 25:
            raise ValueError(f"BODY_25 keypoints must have 25 joints, got {kp.shape[1]}")
        kp = np.delete(kp, BODY25_DROPPED, axis=1)
    xy = kp[..., :2]
    score = kp[..., 2] if kp.shape[-1] > 2 else np.ones(kp.shape[:2])
    valid = (score > min_score) & np.isfinite(xy).all(-1) & (np.abs(xy).sum(-1) > 0)
    feats = np.stack([normalise_frame(xy[t], valid[t]) for t in range(len(kp))]).reshape(len(kp), -1)
    present = valid.any(1)
    n_missing = int((~present).sum())
    if 0 < n_missing < len(kp):
        t = np.arange(len(kp))
        for c in range(feats.shape[1]):
            feats[~present, c] = np.interp(t[~present], t[present], feats[present, c])
    return feats, n_missing


def resample_frames(features, src_fps: float, dst_fps: float = FPS):
    """Nearest-frame resampling to ``dst_fps`` (upstream samples the video at 30 fps)."""
    if abs(src_fps - dst_fps) < 1e-9:
        return features
    n = int(np.floor(len(features) * dst_fps / src_fps + 1e-9))
    idx = np.minimum(np.round(np.arange(n) * src_fps / dst_fps).astype(int), len(features) - 1)
    return features[idx]


def dance_matrix(features):
    """Cosine similarity of every pair of frames; a zero feature vector has similarity 0."""
    f = np.asarray(features, dtype=np.float64)
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    unit = np.divide(f, norm, out=np.zeros_like(f), where=norm > 0)
    return unit @ unit.T


# ------------------------------------------------------------------------------------------ music

def music_matrix(states, *, n_states=len(PITCHES)):
    """M_ij = 1 - |s_i - s_j| / (G - 1), quantised to uint8 and back as upstream stores it."""
    s = np.asarray(states, dtype=np.float64)
    m = 1.0 - np.abs(s[..., :, None] - s[..., None, :]) / (n_states - 1)
    return np.floor(m * 255.0) / 255.0  # np.uint8() truncates


def nearest_index(src: int, dst: int):
    """Source index of each of ``dst`` outputs for PIL's NEAREST resize: floor((x + 0.5) src / dst)."""
    return np.minimum(((np.arange(dst) + 0.5) * src / dst).astype(int), src - 1)


def pearson(a, b) -> float:
    """Pearson r of two equally shaped arrays, 0 when either is constant (upstream's rule)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def window_reward(window, states, *, n_states=len(PITCHES)):
    """Reward of one melody against one dance window, computed the plain way (reference)."""
    m = music_matrix(states, n_states=n_states)
    idx = nearest_index(len(states), len(window))
    return pearson(window, m[np.ix_(idx, idx)])


def batch_rewards(window, candidates, *, n_states=len(PITCHES)):
    """Pearson r of ``window`` (S x S) with the upsampled music matrix of each candidate.

    ``candidates`` is (B, h). Upsampling repeats state a over the rows I_a = {x : idx_x = a},
    so with W' = W - mean(W):  sum W' M_up = sum_ab M_ab B_ab,  B_ab = sum_{I_a x I_b} W',
    and the variance of M_up weights M_ab by c_a c_b with c_a = |I_a|.
    """
    w = np.asarray(window, dtype=np.float64)
    cand = np.asarray(candidates)
    h = cand.shape[1]
    wc = w - w.mean()
    w_norm = np.sqrt((wc ** 2).sum())
    if w.std() == 0:
        return np.zeros(len(cand))
    idx = nearest_index(h, len(w))
    onehot = np.zeros((h, len(w)))
    onehot[idx, np.arange(len(w))] = 1.0
    blocks = onehot @ wc @ onehot.T
    counts = onehot.sum(1)
    weight = counts[:, None] * counts[None, :]
    m = music_matrix(cand, n_states=n_states)  # (B, h, h)
    mean_m = (m * weight).sum((1, 2)) / weight.sum()
    var_m = ((m - mean_m[:, None, None]) ** 2 * weight).sum((1, 2))
    num = (m * blocks).sum((1, 2))
    # M_up is constant exactly when every covered entry is equal (all states equal).
    used = cand[:, counts > 0]
    constant = (used == used[:, :1]).all(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / (w_norm * np.sqrt(var_m))
    r = np.where(constant, 0.0, np.clip(r, -1.0, 1.0))
    return r


def rank(rewards, width: int):
    """Indices of the ``width`` best rewards, best first; equal rewards keep their order.

    Rounding first makes rewards that are equal in exact arithmetic (but differ by float noise,
    ~1e-16, between ways of computing r) equal here too. Candidates are generated beam by beam
    (in beam rank order), state by state, so a tie goes to the candidate from the better-ranked
    beam, then to the lower state. No explicit rule reproduces upstream's machine-dependent
    order well: against a literal port of upstream's loop on random dances, this one and the
    alternatives tried (reverse order, lexicographic) agree with it in 7-42% of dances, the
    rest being upstream's mirror image or another melody of similar correlation (docs/baselines.md).
    """
    r = np.round(np.asarray(rewards, dtype=np.float64), TIE_DECIMALS)
    return np.argsort(-r, kind="stable")[:width]


@dataclass
class SearchResult:
    states: list
    reward: float  # last-window reward of the output beam
    correlation: float  # Pearson r of the whole D and the whole upsampled M (upstream prints its mean)
    n_frames: int
    trace: list = field(default_factory=list)


def beam_search(D, *, note_frames=NOTE_FRAMES, history=HISTORY, beam_width=BEAM_WIDTH,
                n_states=len(PITCHES), start_state=START_STATE, full_correlation=True) -> SearchResult:
    """Melody (state indices) for dance matrix ``D`` by upstream's beam search (module doc, 6)."""
    D = np.asarray(D, dtype=np.float64)
    T = len(D)
    N = T // note_frames
    if N == 0:
        return SearchResult([], 0.0, 0.0, T)
    beams = np.array([[start_state]])
    reward = 0.0
    w_hist = int(T * history / N)
    for k in range(1, N):
        end = int(T * (k + 1) / N)
        start = end - w_hist if end > w_hist else 0
        window = D[start:end, start:end]
        cand = np.concatenate([np.repeat(beams, n_states, axis=0),
                               np.tile(np.arange(n_states), len(beams))[:, None]], axis=1)
        rewards = batch_rewards(window, cand[:, -history:], n_states=n_states)
        # Upstream: np.argsort(rewards)[::-1][:beam_width]; ties: see ``rank``.
        order = rank(rewards, beam_width)
        beams, reward = cand[order], float(rewards[order[0]])
    states = [int(s) for s in beams[0]]
    corr = 0.0
    if full_correlation:
        corr = window_reward(D, states, n_states=n_states)
    return SearchResult(states, reward, corr, T)


def melody_notes(states, *, pitches=PITCHES, step=NOTE_FRAMES / FPS, offset=START_OFFSET, velocity=VELOCITY):
    """[(pitch, start, end, velocity)]: equal consecutive states merge into one longer note."""
    notes, i = [], 0
    while i < len(states):
        j = i
        while j + 1 < len(states) and states[j + 1] == states[i]:
            j += 1
        start = offset + i * step
        notes.append((pitches[states[i]], start, offset + (j + 1) * step, velocity))
        i = j + 1
    return notes


def qpm(fps: float = FPS, note_frames: int = NOTE_FRAMES) -> float:
    """Upstream tempo: one note per sixteenth, qpm = 15 fps / note_frames (75 at 30 fps)."""
    return 15.0 * fps / note_frames
