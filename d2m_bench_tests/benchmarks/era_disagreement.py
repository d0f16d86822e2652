"""How often do today's librosa defaults and D2M-GAN's librosa 0.7.2 disagree per clip?

Not a test: a measurement reported in docs/eval.md ("Paper-era librosa"). Run with

    .venv/bin/python -m d2m_bench_tests.benchmarks.era_disagreement [--n 300] [--out DIR]

Two sets of 2-s clips, each scored under d2m-aistpp-2s (constant-padded STFT, soxr_hq) and
d2m-aistpp-2s-librosa07 (reflect-padded STFT, kaiser_best), and under each change alone:
* ``demo``: `d2m-bench demo` clips (click tracks over a tone, 22.05 kHz, so no resampling);
* ``music``: synthetic songs at 44.1 kHz (kick, snare, hi-hat, bass, chords, a melody at a
  random tempo), the predictions other songs or the same song with timing jitter and noise,
  as generated music is.
A clip disagrees when its (coverage, hit) pair differs.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from d2m_bench.io.audio import write_audio
from d2m_bench.synth.demo import make_demo
from d2m_bench.evaluation import evaluate

ONLY_BEATS = {"genre.enabled": False, "alignment.enabled": False}
ERAS = {"today": ("d2m-aistpp-2s", {}),
        "librosa 0.7.2": ("d2m-aistpp-2s-librosa07", {}),
        "reflect pad only": ("d2m-aistpp-2s", {"beats.onset.pad_mode": "reflect"}),
        "kaiser_best only": ("d2m-aistpp-2s", {"audio.resample": "kaiser_best"})}


def _note(sr, n, freq, start, dur, amp, rng, kind):
    t = np.arange(int(dur * sr)) / sr
    if kind == "kick":
        sig = np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
    elif kind == "snare":
        sig = rng.normal(0, 1, len(t)) * np.exp(-t * 25) + 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 20)
    elif kind == "hat":
        sig = np.diff(rng.normal(0, 1, len(t) + 1)) * np.exp(-t * 60)
    else:  # tonal: a few harmonics with attack and decay
        env = np.minimum(1.0, t / 0.01) * np.exp(-t * (1.5 if kind == "pad" else 4.0))
        sig = sum(np.sin(2 * np.pi * freq * h * t) / h for h in (1, 2, 3, 4)) * env
    out = np.zeros(n)
    i = int(start * sr)
    if i < n:
        k = min(len(sig), n - i)
        out[i:i + k] = amp * sig[:k]
    return out


def song(rng, sr, seconds=2.0, jitter=0.0, tempo=None, seed_parts=None):
    parts = seed_parts or np.random.default_rng(int(rng.integers(1 << 31)))
    n = int(sr * seconds)
    tempo = tempo or float(parts.uniform(80, 140))
    beat = 60.0 / tempo
    offset = float(parts.uniform(0, beat))
    y = np.zeros(n)
    root = float(parts.choice([55, 61.7, 65.4, 73.4, 82.4]))
    for b in range(int(seconds / beat) + 2):
        t0 = offset + b * beat - beat

        def at(t):
            return max(0.0, t + (rng.normal(0, jitter) if jitter else 0.0))

        if t0 >= -beat:
            y += _note(sr, n, 0, at(t0), 0.4, 0.8, parts, "kick") if b % 2 == 0 else 0
            y += _note(sr, n, 0, at(t0), 0.3, 0.5, parts, "snare") if b % 2 == 1 else 0
            for h in (0.0, 0.5):
                y += _note(sr, n, 0, at(t0 + h * beat), 0.1, 0.15 * float(parts.uniform(0.3, 1)), parts, "hat")
            y += _note(sr, n, root * (1.5 if b % 4 == 3 else 1), at(t0), beat, 0.3, parts, "bass")
            if b % 4 == 0:
                for ratio in (1, 1.26, 1.5):
                    y += _note(sr, n, root * 4 * ratio, at(t0), 4 * beat, 0.08, parts, "pad")
            if parts.uniform() < 0.6:
                y += _note(sr, n, root * 8 * float(parts.choice([1, 1.12, 1.26, 1.5, 1.68])),
                           at(t0 + 0.5 * beat * int(parts.integers(2))), 0.5 * beat, 0.15, parts, "lead")
    y += rng.normal(0, 0.003, n)
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


def make_music(out: Path, n: int, sr: int = 44100, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        gt_seed = int(rng.integers(1 << 31))
        gt = song(rng, sr, seed_parts=np.random.default_rng(gt_seed))
        if i % 2:  # the same song, played loosely and noisier: a good generation
            pred = song(rng, sr, jitter=0.03, seed_parts=np.random.default_rng(gt_seed))
            pred = (pred + rng.normal(0, 0.02, len(pred))).astype(np.float32)
        else:  # another song: a generation that ignores its input
            pred = song(rng, sr)
        write_audio(out / "gt" / f"m{i:04d}.wav", gt, sr)
        write_audio(out / "pred" / f"m{i:04d}.wav", pred, sr)
    return out


def disagreements(pred, gt):
    scores = {}
    for name, (proto, over) in ERAS.items():
        res = evaluate(pred, gt, protocol=proto, overrides={**ONLY_BEATS, **over}, workers=2, cache=False)
        scores[name] = ({r["id"]: (r["beats_coverage"], r["beats_hit"]) for r in res.per_clip},
                        {r["id"]: (r["gt_events"], r["pred_events"]) for r in res.per_clip},
                        res.aggregate["beats_coverage"]["value"], res.aggregate["beats_hit"]["value"])
    base, base_ev, cov0, hit0 = scores["today"]
    print(f"  {'today':<18} coverage {cov0:.4f}  hit {hit0:.4f}")
    for name, (per, ev, cov, hit) in scores.items():
        if name == "today":
            continue
        diff = sum(per[k] != base[k] for k in base)
        moved = sum(ev[k] != base_ev[k] for k in base)
        print(f"  {name:<18} coverage {cov:.4f}  hit {hit:.4f}  scores differ: {diff} / {len(base)} clips"
              f"  (onset lists differ: {moved})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="clips per set")
    ap.add_argument("--out", type=Path, default=None, help="keep the clips here (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        demo = make_demo(root / "demo", n=args.n, force=True)
        print(f"demo set ({args.n} clips, 22.05 kHz)")
        disagreements(demo / "generated", demo / "gt")
        music = make_music(root / "music", args.n)
        print(f"music set ({args.n} clips, 44.1 kHz)")
        disagreements(music / "pred", music / "gt")


if __name__ == "__main__":
    main()
