"""Losses of the VQ-VAE and of D2M-GAN training (pure tensor functions + a log-mel module)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def stft_magnitude(y, *, n_fft: int, hop: int, win: int):
    """|STFT| of (N, T) audio with a Hann window, centred frames: (N, n_fft//2 + 1, frames)."""
    window = torch.hann_window(win, device=y.device, dtype=y.dtype)
    spec = torch.stft(y, n_fft=n_fft, hop_length=hop, win_length=win, window=window, center=True,
                      return_complex=True)
    return spec.abs()


def multispectral_loss(x, y, *, n_ffts=(2048, 1024, 512), hops=(240, 120, 50), wins=(1200, 600, 240)):
    """Multi-resolution spectral distance (Jukebox ``multispectral_loss`` resolutions).

    For each resolution r: d_r = ||S_r(x) - S_r(y)||_F / sqrt(#bins), averaged per example and
    over resolutions. Jukebox uses the plain Frobenius norm divided by a data "bandwidth"
    statistic; the RMS form here is scale-free without that statistic.
    """
    total = x.new_zeros(())
    for n_fft, hop, win in zip(n_ffts, hops, wins):
        diff = stft_magnitude(x, n_fft=n_fft, hop=hop, win=win) - stft_magnitude(y, n_fft=n_fft, hop=hop, win=win)
        total = total + diff.pow(2).flatten(1).mean(-1).sqrt().mean()
    return total / len(n_ffts)


def multispectral_norm(x, y, *, n_ffts=(2048, 1024, 512), hops=(240, 120, 50), wins=(1200, 600, 240)):
    """Jukebox ``multispectral_loss``: per example, ||S_r(x) - S_r(y)||_F averaged over the
    resolutions r; shape (N,). Jukebox divides its batch mean by the data's spec bandwidth."""
    total = 0.0
    for n_fft, hop, win in zip(n_ffts, hops, wins):
        diff = stft_magnitude(x, n_fft=n_fft, hop=hop, win=win) - stft_magnitude(y, n_fft=n_fft, hop=hop, win=win)
        total = total + diff.pow(2).flatten(1).sum(-1).sqrt()
    return total / len(n_ffts)


def linf_loss(x, y, k: int):
    """Jukebox ``linf``: mean of the k largest squared errors of each example (k capped at its length)."""
    residual = (x - y).pow(2).reshape(x.shape[0], -1)
    return residual.topk(min(k, residual.shape[1]), dim=1).values.mean()


class LogMel(nn.Module):
    """log10 mel magnitude spectrogram as in D2M-GAN's ``Audio2Mel`` (MelGAN front end).

    Reflect-pad (n_fft - hop) / 2 on both sides, Hann STFT without centring, magnitude,
    Slaney mel filters (librosa.filters.mel, fmin 0, fmax sr/2), log10(max(mel, 1e-5)).
    With n_fft 1024 / hop 256 a 2-s clip (44032 to 44100 samples) gives 172 frames.
    """

    def __init__(self, *, sr: int = 22050, n_fft: int = 1024, hop: int = 256, win: int = 1024, n_mels: int = 128,
                 fmin: float = 0.0, fmax: float | None = None):
        super().__init__()
        import librosa

        mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("mel_basis", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(win), persistent=False)
        self.n_fft, self.hop, self.win = n_fft, hop, win

    def forward(self, audio):
        """(N, 1, T) or (N, T) -> (N, n_mels, frames)."""
        if audio.dim() == 3:
            audio = audio.squeeze(1)
        p = (self.n_fft - self.hop) // 2
        audio = F.pad(audio.unsqueeze(1), (p, p), mode="reflect").squeeze(1)
        spec = torch.stft(audio, n_fft=self.n_fft, hop_length=self.hop, win_length=self.win, window=self.window,
                          center=False, return_complex=True).abs()
        return torch.log10(torch.clamp(self.mel_basis @ spec, min=1e-5))


def hinge_d_loss(real_outputs, fake_outputs):
    """sum over scales of mean relu(1 - D(real)) + mean relu(1 + D(fake)) (last map of each scale)."""
    loss = 0.0
    for real, fake in zip(real_outputs, fake_outputs):
        loss = loss + F.relu(1 - real[-1]).mean() + F.relu(1 + fake[-1]).mean()
    return loss


def hinge_g_loss(fake_outputs):
    """-sum over scales of mean D(fake)."""
    return sum(-fake[-1].mean() for fake in fake_outputs)


def feature_matching_loss(real_outputs, fake_outputs):
    """MelGAN feature matching: sum_{scales, hidden layers} w * L1(feat_fake, sg(feat_real)),
    w = (1 / n_scales) * (4 / n_hidden_layers) as in D2M-GAN (4 / (n_layers_D + 1))."""
    n_scales = len(fake_outputs)
    loss = 0.0
    for real, fake in zip(real_outputs, fake_outputs):
        w = (1.0 / n_scales) * (4.0 / (len(fake) - 2))
        for r, f in zip(real[:-1], fake[:-1]):
            loss = loss + w * F.l1_loss(f, r.detach())
    return loss
