"""Does the generator listen to the dance? Figures on a fixed probe batch of clips.

A D2M-GAN generator can settle on one output whatever the input (the released initialisation
does at tiny width, and upstream's does at paper size too), while its losses fall and the beat
metrics, which normalise the onset envelope, score it near 100 %. These figures make that
visible: how much the codes differ across clips, and how many tokens change when the probe
clips' motion is shuffled among them or set to zero (visual features and genres kept).
"""
from __future__ import annotations

import torch

COLUMNS = ["code_spread", "token_spread", "tokens_shuffled", "tokens_zeroed"]


@torch.no_grad()
def motion_dependence(G, vqvae, level: int, motion, visual, genre=None) -> dict:
    """code_spread: mean over code entries of the std across clips / mean |code|;
    token_spread: fraction of token positions where the clips do not all agree;
    tokens_shuffled / tokens_zeroed: fraction of tokens that change when each clip gets the next
    clip's motion / zero motion (shuffled and code_spread are None for a single clip)."""
    was_training = G.training
    G.eval()
    try:
        codes = G(motion, visual, genre)
        shuffled = G(motion.roll(1, 0), visual, genre) if len(motion) > 1 else None
        zeroed = G(torch.zeros_like(motion), visual, genre)
    finally:
        G.train(was_training)
    block = vqvae.bottleneck.level_blocks[level]
    tokens = block.encode(codes)

    def changed(other):
        return None if other is None else float((block.encode(other) != tokens).float().mean())

    return {"code_spread": float(codes.std(0).mean() / codes.abs().mean().clamp_min(1e-30)) if len(codes) > 1
            else None,
            "token_spread": float((tokens != tokens[:1]).any(0).float().mean()),
            "tokens_shuffled": changed(shuffled), "tokens_zeroed": changed(zeroed)}


def ignores_motion(figures: dict, threshold: float) -> bool:
    """True when neither shuffling nor zeroing the motion changes ``threshold`` of the tokens."""
    values = [v for v in (figures["tokens_shuffled"], figures["tokens_zeroed"]) if v is not None]
    return all(v < threshold for v in values)


def verdict(figures: dict, threshold: float, **extra) -> dict:
    return {**figures, "threshold": threshold, "input_independent": ignores_motion(figures, threshold), **extra}


def describe(figures: dict) -> str:
    shuffled = figures["tokens_shuffled"]
    return (f"shuffling the motion of {figures.get('probe_clips', '?')} probe clips changes "
            f"{'n/a' if shuffled is None else f'{100 * shuffled:.2f} %'} of tokens, zeroing it "
            f"{100 * figures['tokens_zeroed']:.2f} % (threshold {100 * figures['threshold']:g} %); the clips differ in "
            f"{100 * figures['token_spread']:.2f} % of token positions")


def probe_batch(dataset, *, clips: int, device, has_genre: bool):
    """(motion, visual, genre) of the first ``clips`` clips of a ClipDataset, on ``device``."""
    items = [dataset[i] for i in range(min(clips, len(dataset)))]
    motion = torch.stack([it["motion"] for it in items]).to(device)
    visual = torch.stack([it["visual"] for it in items]).to(device)
    genre = torch.stack([it["genre"] for it in items]).view(-1).to(device) if has_genre else None
    return motion, visual, genre
