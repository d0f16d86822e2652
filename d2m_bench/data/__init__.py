"""Dataset builders (AIST++, TikTok, the D2M-GAN release), features, and shipped split lists.

The ``*.txt`` files beside this module are package data: the AIST++ cross-modal split and
ignore list, and the D2M-GAN segment lists, so a build never needs the network.
"""
from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent


def shipped_list(name: str) -> list[str]:
    """Non-empty stripped lines of a shipped list (``crossmodal_test.txt`` ...)."""
    return [line.strip() for line in (DATA_DIR / name).read_text().splitlines() if line.strip()]


def list_stems(name: str) -> list[str]:
    """Segment ids of a shipped D2M-GAN list (``./aistplus/audio_s2/test/X_seg1.wav`` -> ``X_seg1``)."""
    return [Path(line).stem for line in shipped_list(name)]
