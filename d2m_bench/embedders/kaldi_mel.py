"""Kaldi's triangular mel filterbank, for PaSST's mel front end when torchaudio is not installed.

hear21passt's ``AugmentMelSTFT`` builds its mel matrix on every call with
``torchaudio.compliance.kaldi.get_mel_banks``. torchaudio wheels are built against one torch
release each, so an install whose torch has no matching torchaudio (this project's machines:
torch 2.13) cannot import it. Only in that case does d2m-bench hand this function to the library
in torchaudio's place (``d2m_bench.embedders.stand_ins``), and the PaSST result's meta names
which mel-bank source ran. Wherever torchaudio imports, the library uses torchaudio's own.

The definition is Kaldi's ``MelBanks`` (feat/mel-computations.cc) without VTLN warping (PaSST
never warps): mel(f) = 1127 ln(1 + f / 700); ``num_bins`` triangles whose left, centre and right
edges are equally spaced in mel between ``low_freq`` and ``high_freq`` (step
(mel(high) - mel(low)) / (num_bins + 1)); each FFT bin k = 0 .. n/2 - 1 (frequency k * sr / n,
the Nyquist bin left out as torchaudio does: PaSST pads that column with zeros) gets
max(0, min(rising slope, falling slope)) measured in mel. The float32 operations follow
torchaudio's order, so the matrix is bit-for-bit the same (d2m_bench_tests/test_embedders_passt.py
reads torchaudio's own kaldi.py out of its wheel and compares).
"""
from __future__ import annotations

import math

MEL_BREAK = 700.0
MEL_HIGH_Q = 1127.0


def mel_of_hz(freq: float) -> float:
    return MEL_HIGH_Q * math.log(1.0 + freq / MEL_BREAK)


def get_mel_banks(num_bins: int, window_length_padded: int, sample_freq: float, low_freq: float, high_freq: float,
                  vtln_low: float, vtln_high: float, vtln_warp_factor: float):
    """``(bins, center_freqs)``: (num_bins, window_length_padded / 2) float32 triangles and their
    (num_bins, 1) centre frequencies in Hz, torchaudio's ``get_mel_banks`` signature and results.
    ``high_freq <= 0`` counts back from the Nyquist frequency (Kaldi's convention). ``vtln_low`` and
    ``vtln_high`` only matter with warping, which this port refuses (``vtln_warp_factor`` != 1)."""
    import torch

    if vtln_warp_factor != 1.0:
        raise ValueError("d2m-bench's Kaldi mel banks have no VTLN warping (vtln_warp_factor must be 1.0)")
    if num_bins <= 3:
        raise ValueError(f"at least 4 mel bins are needed, got {num_bins}")
    if window_length_padded % 2:
        raise ValueError(f"the padded window length must be even, got {window_length_padded}")
    nyquist = 0.5 * sample_freq
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(f"bad mel band edges: low {low_freq} and high {high_freq} vs. Nyquist {nyquist}")

    lowest, highest = mel_of_hz(low_freq), mel_of_hz(high_freq)
    step = (highest - lowest) / (num_bins + 1)  # num_bins + 2 edges: the outer triangles reach both ends
    index = torch.arange(num_bins).unsqueeze(1)
    left = lowest + index * step
    center = lowest + (index + 1.0) * step
    right = lowest + (index + 2.0) * step

    bin_hz = (sample_freq / window_length_padded) * torch.arange(window_length_padded / 2)
    bin_mel = (MEL_HIGH_Q * (1.0 + bin_hz / MEL_BREAK).log()).unsqueeze(0)
    rising = (bin_mel - left) / (center - left)
    falling = (right - bin_mel) / (right - center)
    bins = torch.max(torch.zeros(1), torch.min(rising, falling))
    center_hz = MEL_BREAK * ((center / MEL_HIGH_Q).exp() - 1.0)
    return bins, center_hz
