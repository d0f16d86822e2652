"""Label-distribution metrics of generated audio: KL divergence, Inception Score, CLAP score.

Pure functions over classifier logits / embeddings (numpy, float64).

KL divergence (paired by id): for clip i with reference logits r_i and generated logits g_i,
the per-clip value is sum_c p_c (log p_c - log(q_c + eps)), eps = 1e-6, where p is the
distribution put first (the "target" of ``torch.nn.functional.kl_div``) and q the other one;
the dataset value is the mean over clips (kl_div(reduction="sum") / N).

- ``direction="ref_to_gen"``: KL(reference || generated), p from the reference clip: the
  audioldm_eval definition (``calculate_kl``: ``kl_div((gen.softmax + EPS).log(), ref.softmax)``),
  also audiocraft/MusicGen's KLD.
- ``direction="gen_to_ref"``: KL(generated || reference): stable-audio-metrics
  (``passt_kld``: ``kl_div((ref_p + 1e-6).log(), eval_p)``).
- ``convention="softmax"``: p, q = softmax over the classes (audioldm_eval "KL",
  stable-audio-metrics). ``convention="sigmoid"``: p, q = element-wise sigmoid of the logits,
  not normalised, summed over classes as they are (audioldm_eval "KL_Sigmoid"; not the
  Bernoulli KL: the (1 - p) terms are absent, as there).

Inception Score (Salimans et al. 2016, audioldm_eval/torch-fidelity ``calculate_isc``): rows
shuffled with ``numpy.random.RandomState(seed).permutation`` (seed 2020 there), softmax of the
logits, split into ``splits`` consecutive chunks (chunk k = rows [k N // s, (k+1) N // s));
per chunk exp(mean_i KL(p_i || mean_j p_j)); the result is the mean and the population
standard deviation (numpy ``std``) of the chunk scores.

CLAP score: cosine similarity between the CLAP audio embedding of a generated clip and the
CLAP text embedding of its prompt, mean over clips (stable-audio-metrics ``clap_score``;
audioldm_eval-style tables print it x100: ``scale``).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

EPS = 1e-6
CONVENTIONS = ("softmax", "sigmoid")
DIRECTIONS = ("ref_to_gen", "gen_to_ref")


def softmax(logits: ArrayLike) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(logits: ArrayLike) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def _probabilities(logits, convention):
    if convention == "softmax":
        return softmax(logits)
    if convention == "sigmoid":
        return sigmoid(logits)
    raise ValueError(f"unknown convention '{convention}' ({', '.join(CONVENTIONS)})")


def _check_logits(x, name):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"{name}: expected (n_clips, n_classes) logits, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: logits must be finite")
    return x


def kl_per_clip(gen_logits: ArrayLike, ref_logits: ArrayLike, *, convention="softmax", direction="ref_to_gen",
                eps: float = EPS) -> np.ndarray:
    """(n,) per-clip KL divergences between paired rows of ``gen_logits`` and ``ref_logits``
    (row i of each belongs to the same id); definitions in the module doc."""
    g = _check_logits(gen_logits, "gen_logits")
    r = _check_logits(ref_logits, "ref_logits")
    if g.shape != r.shape:
        raise ValueError(f"paired logits differ in shape: {g.shape} vs {r.shape}")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction '{direction}' ({', '.join(DIRECTIONS)})")
    pg, pr = _probabilities(g, convention), _probabilities(r, convention)
    p, q = (pr, pg) if direction == "ref_to_gen" else (pg, pr)
    # p log p is 0 where p is 0 (torch.kl_div's xlogy)
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return (plogp - p * np.log(q + eps)).sum(axis=1)


def kl_divergence(gen_logits: ArrayLike, ref_logits: ArrayLike, **kwargs) -> float:
    """Mean over clips of ``kl_per_clip`` (kl_div(reduction="sum") / N, as both tools compute it).

    Example: identical logits give a value near 0 (exactly 0 without eps)."""
    return float(kl_per_clip(gen_logits, ref_logits, **kwargs).mean())


def inception_score(logits: ArrayLike, *, splits: int = 10, shuffle: bool = True, seed: int = 2020) -> tuple[float, float]:
    """(mean, std) Inception Score of generated clips' logits (definition in the module doc).

    Example: every clip predicting a different class with certainty gives IS = number of
    clips per split; identical predictions give 1."""
    x = _check_logits(logits, "logits")
    n = len(x)
    if not isinstance(splits, int) or isinstance(splits, bool) or not 1 <= splits <= n:
        raise ValueError(f"splits must be an integer between 1 and the number of clips ({n}), got {splits!r}")
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n)]
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    p = np.exp(log_p)
    scores = []
    for k in range(splits):
        lo, hi = k * n // splits, (k + 1) * n // splits
        q = p[lo:hi].mean(axis=0, keepdims=True)
        kl = (p[lo:hi] * (log_p[lo:hi] - np.log(q))).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


def cosine_per_clip(audio_embeddings: ArrayLike, text_embeddings: ArrayLike) -> np.ndarray:
    """(n,) cosine similarity of paired rows (audio clip i with its prompt i)."""
    a = np.asarray(audio_embeddings, dtype=np.float64)
    t = np.asarray(text_embeddings, dtype=np.float64)
    if a.ndim != 2 or a.shape != t.shape:
        raise ValueError(f"expected paired (n, d) embeddings, got {a.shape} and {t.shape}")
    na, nt = np.linalg.norm(a, axis=1), np.linalg.norm(t, axis=1)
    if (na == 0).any() or (nt == 0).any():
        raise ValueError("an embedding has zero norm: cosine similarity undefined")
    return (a * t).sum(axis=1) / (na * nt)


def clap_score(audio_embeddings: ArrayLike, text_embeddings: ArrayLike, *, scale: float = 1.0) -> float:
    """Mean cosine similarity between paired CLAP audio and text embeddings, times ``scale``."""
    return float(cosine_per_clip(audio_embeddings, text_embeddings).mean() * scale)
