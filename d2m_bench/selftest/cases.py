"""The self-test battery: fixed inputs written into a folder, one sub-folder per case.

Every signal comes from a seeded generator (numpy's PCG64, stable across versions) and is
quantised to 16-bit steps, so the same files are written on every install. The compressed
predictions (AAC in mp4/m4a, mp3) are shipped as bytes in ``media/``: an encoder of another
ffmpeg version would write other bytes, while the point of those cases is the decoder. The
expected values in ``expected.json`` were computed from these inputs by the literal ports of
the published scripts kept in the test tree (d2m_bench_tests/test_selftest_golden.py).

The ``peer`` cases (issue 22) run one embedder metric of a named peer protocol (audioldm-eval,
fadtk) from mixed-rate files through a network whose weights are drawn here from numpy's seeded
generator (`seeded_weights`), so that every install computes with the same numbers; a case
whose library or program is missing is skipped, and says which.
"""
from __future__ import annotations

import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MEDIA = Path(__file__).parent / "media"
MOTION_FPS = 60
SMPL_JOINTS = 24  # Bailando's script reshapes keypoints to (-1, 24, 3)


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    kind: str  # beats, alignment, fad or peer
    protocol: str = "d2m-aistpp-2s"
    ids: tuple = ()
    options: dict = field(default_factory=dict)


def music(seed: int, sr: int, seconds: float, *, onsets=None, channels: int = 1, tone: float = 0.0) -> np.ndarray:
    """Decaying tone bursts at random (or given) onsets over a soft sustained chord, at most
    0.5 full scale, rounded to 16-bit steps; (channels, samples) when channels > 1. ``tone``
    adds a sustained 220-Hz sine of that amplitude (cut anywhere, it ends in a step)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    if onsets is None:  # sparse, so that some 1-s bins stay empty and the scores are not all 1
        onsets = np.sort(rng.uniform(0.05, seconds - 0.1, size=int(rng.integers(1, int(seconds) + 1))))
    fade_in = np.minimum(t / 0.3, 1.0)  # no onset at t = 0 from the chord itself
    y = 0.03 * fade_in * sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(110, 440, size=3))
    y += tone * fade_in * np.sin(2 * np.pi * 220.0 * t + 0.5)
    for onset in onsets:
        start = int(round(onset * sr))
        m = min(n - start, int(0.12 * sr))
        if m <= 0:
            continue
        tt = np.arange(m) / sr
        y[start:start + m] += rng.uniform(0.15, 0.35) * np.sin(2 * np.pi * rng.uniform(300, 3000) * tt) * np.exp(-tt / 0.02)
    y = np.clip(y, -0.5, 0.5)
    if channels > 1:  # the other channel: the same events, a little quieter and phase-shifted
        y = np.stack([y] + [0.8 * np.roll(y, 7 * c) for c in range(1, channels)])
    return np.round(y * 32767.0) / 32768.0


def _write(path: Path, y, sr: int, subtype: str = "PCM_16") -> None:
    from ..io.audio import write_audio

    write_audio(path, np.asarray(y, dtype=np.float64), sr, subtype=subtype)


def _pairs(folder: Path, ids, make_gt, make_pred) -> None:
    for i, cid in enumerate(ids):
        make_gt(folder / "gt", cid, i)
        make_pred(folder / "pred", cid, i)


def _shipped(name: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MEDIA / name, dest)


IDS3 = ("c1", "c2", "c3")
AIST_IDS = ("gPO_sBM_c01_d11_mPO1_ch02_seg1", "gHO_sBM_c01_d19_mHO4_ch04_seg2")

CASES = (
    Case("wav-22k-pcm16", "wav 22.05 kHz mono 16-bit, 44032-sample predictions (D2M high)", "beats", ids=IDS3),
    Case("wav-44k-stereo-float", "wav 44.1 kHz stereo float32, 3 s, resampled", "beats", ids=IDS3),
    Case("wav-48k-6s", "wav 48 kHz mono, 6 s (six 1-s bins), resampled", "beats", ids=IDS3),
    Case("aac-mp4-22k", "AAC in mp4 at 22.05 kHz (demo pages), encoder delay and padding", "beats", ids=IDS3),
    Case("aac-m4a-48k-stereo-loris", "AAC in m4a at 48 kHz stereo, LORIS variant", "beats", protocol="loris", ids=IDS3),
    Case("mp3-44k", "mp3 at 44.1 kHz (LAME gapless info) against 22.05-kHz wav", "beats", ids=IDS3),
    Case("unequal-lengths", "pred 43008 vs gt 44100 samples, pred 2.99 s vs gt 2.5 s (equal bin counts)", "beats",
         ids=IDS3),
    Case("silent-gt", "one gt clip silent: excluded, where the script divides by zero", "beats", ids=IDS3),
    Case("loris-shorter-pred", "LORIS: 2-s predictions against 3-s gt (gt bins truncated)", "beats",
         protocol="loris", ids=IDS3),
    Case("motion-beat-align", "FACT BeatAlign and Bailando BAS: 4 s of 60-fps joints, 5 s of music", "alignment",
         ids=AIST_IDS),
    Case("fad-embeddings", "FAD of two fixed embedding sets (the Frechet distance eval uses)", "fad"),
    Case("peer-audioldm-eval-fd", "audioldm-eval loading (first channel, DC removed, torchaudio's sinc, 2 s): "
         "FD from mixed-rate files, seeded random VGGish", "peer", protocol="audioldm-eval", ids=IDS3,
         options={"embedder": "vggish", "metric": "fd_vggish", "modules": ("torch",), "programs": (),
                  "overrides": {"fd.embedders": ["vggish"], "fd.layers": {"vggish": "pre_relu"}, "kid.enabled": False,
                                "kl.enabled": False, "inception.enabled": False}}),
    Case("peer-fadtk-fd-vggish", "fadtk: VGGish FD from mixed-rate files converted by sox, seeded random weights",
         "peer", protocol="fadtk", ids=IDS3,
         options={"embedder": "vggish", "metric": "fd_vggish", "modules": ("torch",), "programs": ("sox",),
                  "overrides": {"fd.embedders": ["vggish"], "fd.layers": {"vggish": "pre_relu"}}}),
)


def case_seed(name: str) -> int:
    """A seed fixed by the case's name (not its position in the battery)."""
    return zlib.crc32(name.encode()) % 100_000


def write_case(case: Case, root) -> Path:
    """Write one case's inputs under ``root/<name>`` and return that folder."""
    folder = Path(root) / case.name
    seed = case_seed(case.name)
    if case.name == "wav-22k-pcm16":
        _pairs(folder, case.ids, lambda d, c, i: _write(d / f"{c}.wav", music(seed + i, 22050, 2.0), 22050),
               lambda d, c, i: _write(d / f"{c}.wav", music(seed + 5 + i, 22050, 2.0)[:44032], 22050))
    elif case.name == "wav-44k-stereo-float":
        _pairs(folder, case.ids,
               lambda d, c, i: _write(d / f"{c}.wav", music(seed + i, 44100, 3.0, channels=2), 44100, "FLOAT"),
               lambda d, c, i: _write(d / f"{c}.wav", music(seed + 5 + i, 44100, 3.0, channels=2), 44100, "FLOAT"))
    elif case.name == "wav-48k-6s":
        _pairs(folder, case.ids, lambda d, c, i: _write(d / f"{c}.wav", music(seed + i, 48000, 6.0), 48000),
               lambda d, c, i: _write(d / f"{c}.wav", music(seed + 5 + i, 48000, 6.0), 48000))
    elif case.name == "aac-mp4-22k":
        _pairs(folder, case.ids, lambda d, c, i: _write(d / f"{c}.wav", music(seed + i, 22050, 2.0), 22050),
               lambda d, c, i: _shipped(f"aac-22k-{c}.mp4", d / f"{c}.mp4"))
    elif case.name == "aac-m4a-48k-stereo-loris":
        _pairs(folder, case.ids, lambda d, c, i: _write(d / f"{c}.wav", music(seed + i, 48000, 3.0), 48000),
               lambda d, c, i: _shipped(f"aac-48k-stereo-{c}.m4a", d / f"{c}.m4a"))
    elif case.name == "mp3-44k":
        _pairs(folder, case.ids, lambda d, c, i: _write(d / f"{c}.wav", music(seed + i, 22050, 2.0), 22050),
               lambda d, c, i: _shipped(f"mp3-44k-{c}.mp3", d / f"{c}.mp3"))
    elif case.name == "unequal-lengths":
        # Where padding or trimming the prediction before detection changes the events (issue 12):
        # c1 ends mid-tone at 43008 samples, so zero-padding it to 44100 adds a click onset near
        # 1.95 s; c2 (2.99 s against a 2.5-s gt, both 3 bins) has an onset at 2.6 s that trimming
        # to 2.5 s would drop; c3 is D2M-GAN high's 44032 samples.
        gt_len = {"c1": 44100, "c2": 55125, "c3": 44100}
        pred_len = {"c1": 43008, "c2": 65930, "c3": 44032}
        gt_onsets = {"c1": [0.4], "c2": [0.3, 2.2], "c3": None}
        pred_onsets = {"c1": [0.3], "c2": [0.5, 2.6], "c3": None}
        _pairs(folder, case.ids,
               lambda d, c, i: _write(d / f"{c}.wav", music(seed + i, 22050, 3.0, onsets=gt_onsets[c])[: gt_len[c]],
                                      22050),
               lambda d, c, i: _write(d / f"{c}.wav", music(seed + 5 + i, 22050, 3.0, onsets=pred_onsets[c],
                                                            tone=0.25 if c == "c1" else 0.0)[: pred_len[c]], 22050))
    elif case.name == "silent-gt":
        _pairs(folder, case.ids,
               lambda d, c, i: _write(d / f"{c}.wav", np.zeros(44100) if c == "c2" else music(seed + i, 22050, 2.0),
                                      22050),
               lambda d, c, i: _write(d / f"{c}.wav", music(seed + 5 + i, 22050, 2.0), 22050))
    elif case.name == "loris-shorter-pred":
        _pairs(folder, case.ids, lambda d, c, i: _write(d / f"{c}.wav", music(seed + i, 22050, 3.0), 22050),
               lambda d, c, i: _write(d / f"{c}.wav", music(seed + 5 + i, 22050, 2.0), 22050))
    elif case.name == "motion-beat-align":
        _motion_case(folder, case.ids, seed)
    elif case.kind == "peer":
        _peer_case(folder, case.ids, seed)
    elif case.name == "fad-embeddings":
        folder.mkdir(parents=True, exist_ok=True)
        pred, gt = fad_embeddings(seed)
        np.save(folder / "pred.npy", pred)
        np.save(folder / "gt.npy", gt)
    else:  # pragma: no cover - CASES and this function are edited together
        raise ValueError(f"no writer for case {case.name}")
    return folder


def _peer_case(folder: Path, ids, seed: int) -> None:
    """Pairs where loadings part ways: gt at 44.1 kHz stereo with a DC offset, predictions at
    48 kHz or 16 kHz, mono, one shorter than 2 s."""
    for i, cid in enumerate(ids):
        gt = music(seed + i, 44100, 2.0, channels=2, tone=0.1) + 0.02 * (i + 1)
        _write(folder / "gt" / f"{cid}.wav", np.round(gt * 32767.0) / 32768.0, 44100)
        sr = (48000, 16000, 22050)[i % 3]
        _write(folder / "pred" / f"{cid}.wav", music(seed + 5 + i, sr, (2.0, 1.5, 2.5)[i % 3], tone=0.1), sr)


def seeded_weights(embedder: str, folder, seed: int = 0):
    """A weights file for ``embedder`` (``panns-cnn14-16k`` or ``vggish``) in the layout its loader
    reads, every tensor drawn from numpy's PCG64 (stable across versions, unlike torch's
    initialisers): weights uniform in +-sqrt(6 / fan in) (He's scale, so that the signal keeps its
    size through the ReLU layers and the outputs depend on the input), biases and BatchNorm
    shifts in +-0.1, BatchNorm scales and running variances around 1. Nothing here is a trained
    model."""
    import torch

    path = Path(folder) / f"{embedder}-seeded{seed}.pth"
    if path.exists():  # both peer cases of a run share one file
        return path
    rng = np.random.default_rng(seed)
    if embedder == "vggish":
        from ..embedders import vggish

        model = vggish.build_model()
    else:
        from ..embedders import panns

        model = panns.build_model(embedder)
    state = {}
    for name, t in model.state_dict().items():
        shape = tuple(t.shape)
        if not t.is_floating_point():
            state[name] = t
            continue
        u = rng.random(shape, dtype=np.float32) * np.float32(2.0) - np.float32(1.0)  # uniform in [-1, 1)
        if name.endswith("running_var"):
            values = np.float32(1.25) + np.float32(0.75) * u
        elif t.ndim == 1 and name.endswith("weight"):
            values = np.float32(1.0) + np.float32(0.1) * u
        elif t.ndim >= 2:
            values = u * np.float32(np.sqrt(6.0 / np.prod(shape[1:])))
        else:
            values = np.float32(0.1) * u
        state[name] = torch.from_numpy(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state if embedder == "vggish" else {"model": state}, path)
    return path


def missing_requirements(case: Case) -> str | None:
    """Why a ``peer`` case cannot run here (a library or program it needs is absent), or None."""
    import importlib.util
    import shutil

    absent = [m for m in case.options.get("modules", ()) if importlib.util.find_spec(m) is None]
    absent += [p for p in case.options.get("programs", ()) if shutil.which(p) is None]
    return f"needs {', '.join(absent)}" if absent else None


def _motion_case(folder: Path, ids, seed: int) -> None:
    """4 s of motion (240 frames) against 5 s of music, as AIST++ music outlasts a segment's
    motion: mint cuts the music beats to the motion (``audio_feature[:T]``). The music clicks
    on the id's nominal tempo with a music beat at frame T = 240, and the last kinematic beat
    (frame 236) is nearer to it than to the beat before, so an uncut FACT score differs."""
    from ..data.segments import parse_aist_name
    from ..synth.synthetic import joints_with_beats

    frames = 4 * MOTION_FPS
    for i, cid in enumerate(ids):
        rng = np.random.default_rng(seed + i)
        period = 60.0 * MOTION_FPS / parse_aist_name(cid).tempo_bpm  # frames per beat
        # beat_track puts a click's beat one frame late (the onset envelope's lag): a click at
        # T - 1 gives the music beat at frame T
        clicks = frames - 1 - period * np.arange(-2, int(frames / period) + 1)
        clicks = np.sort(clicks[(clicks > 10) & (clicks < 5 * MOTION_FPS - 10)])
        kinematic = np.array([37, 83, 131, 178, 236]) + rng.integers(-4, 5, size=5) * np.array([1, 1, 1, 1, 0])
        # made 10 frames longer and cut, so that the motion still speeds up after frame 236 and
        # 236 is a strict minimum (argrelextrema clips its +-10 window at the last frame)
        joints = joints_with_beats(kinematic, frames=frames + 10, joints=SMPL_JOINTS, seed=seed + i)[:frames]
        (folder / "motion").mkdir(parents=True, exist_ok=True)
        np.save(folder / "motion" / f"{cid}.npy", joints)
        _write(folder / "gt" / f"{cid}.wav", music(seed + i, 22050, 5.0, onsets=clicks / MOTION_FPS), 22050)
        # the prediction: every other click 80 ms late
        shifted = clicks / MOTION_FPS + 0.08 * (np.arange(len(clicks)) % 2)
        _write(folder / "pred" / f"{cid}.wav", music(seed + 5 + i, 22050, 5.0, onsets=shifted), 22050)


def fad_embeddings(seed: int):
    """(pred (300, 32), gt (260, 32)) float64: correlated Gaussian sets with different means and covariances."""
    rng = np.random.default_rng(seed)
    d = 32
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    gt = rng.normal(size=(260, d)) @ mix
    pred = 0.2 + rng.normal(size=(300, d)) @ (mix + 0.3 * rng.normal(size=(d, d)) / np.sqrt(d))
    return pred, gt


def write_all(root) -> dict:
    """Write every case under ``root``; ``{name: folder}``."""
    return {case.name: write_case(case, root) for case in CASES}
