"""Reference systems scored on a run's own gt set: the rows that anchor a leaderboard table.

On 2-s clips with 1-s bins, the paper's beat metrics are nearly saturated by any rhythmic
audio, so a number means little without what trivial systems score on the same clips under
the same protocol. For a gt set (the clips a run scored, :mod:`d2m_bench.results.gtset`) this
module writes five references and scores each with :func:`d2m_bench.evaluate`:

- ``ground-truth``: a byte copy of each gt file (the ceiling);
- ``shuffled-gt``: a byte copy of another clip's gt (Sattolo derangement, seeded: no clip keeps
  its own music): right kind of music, wrong timing;
- ``metronome``: 30-ms 1-kHz clicks at the set's median tempo (librosa.feature.tempo of each gt,
  median over clips), from t = 0, the same for every clip of a length: rhythm without any
  relation to the clip;
- ``white-noise``: seeded Gaussian noise, std 0.1 (-20 dBFS RMS);
- ``silence``: zeros.
Every floor clip has its gt's length at the protocol's sample rate. Scores are cached under
``$D2M_BENCH_CACHE/floors/`` by protocol hash, gt-set fingerprint and :data:`FLOORS_VERSION`.
"""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from ..errors import UserError

FLOORS_VERSION = 1
FLOORS = ("ground-truth", "shuffled-gt", "metronome", "white-noise", "silence")
ROLES = {"ground-truth": "ceiling"}  # every other reference is a floor
# Reference runs made by `d2m-bench baseline run` (provenance kind "reference") that stand for a
# floor of this module; their metronome clicks at the dance's kinematic beats, not at a tempo.
BASELINE_REFERENCES = {"ground-truth": "ground-truth", "shuffled-gt": "shuffled-gt", "white-noise": "white-noise",
                       "silence": "silence", "metronome": "metronome (kinematic beats)"}


def role(name: str) -> str:
    return ROLES.get(name, "floor")


class FloorsUnavailable(Exception):
    """The floors of a set cannot be computed here (gt files missing or changed, protocol unknown)."""


def protocol_of(doc: dict):
    """The :class:`~d2m_bench.protocol.Protocol` a result was scored under, rebuilt from its echo;
    FloorsUnavailable when the echo's parameters no longer hash to its recorded hash."""
    from ..protocol import Protocol

    p = doc.get("protocol") if isinstance(doc.get("protocol"), dict) else {}
    if not isinstance(p.get("params"), dict):
        raise FloorsUnavailable("the result does not echo its protocol parameters")
    proto = Protocol(str(p.get("name", "")), str(p.get("description", "")), p["params"], str(p.get("source", "")),
                     command=str(p.get("command", "eval")))
    if proto.hash != p.get("hash"):
        raise FloorsUnavailable("the echoed protocol parameters do not hash to the recorded protocol hash")
    return proto


def gt_files(gt_set: dict) -> list:
    """[(id, path)] of a gt set, checked against the recorded hashes; FloorsUnavailable otherwise."""
    from ..io.cache import file_digest

    root = Path(str(gt_set.get("root", "")))
    clips = gt_set.get("clips")
    if not isinstance(clips, list) or not clips:
        raise FloorsUnavailable("the gt set lists no clips")
    out = []
    for cid, sha, rel in clips:
        path = root / rel
        if not path.is_file():
            raise FloorsUnavailable(f"gt file not found: {path}")
        if file_digest(path) != sha:
            raise FloorsUnavailable(f"gt file changed since the run: {path}")
        out.append((str(cid), path))
    return out


def median_tempo(signals, sr: int) -> float:
    """Median over clips of librosa.feature.tempo (BPM); 120 when no clip gives a tempo."""
    import librosa

    tempi = [float(librosa.feature.tempo(y=y, sr=sr)[0]) for y in signals if len(y) and np.any(y)]
    tempi = [t for t in tempi if np.isfinite(t) and t > 0]
    return float(np.median(tempi)) if tempi else 120.0


def write_floors(files, out: Path, *, sr: int, resample: str = "soxr_hq", seed: int = 0) -> tuple[dict, dict]:
    """Write the five references of ``files`` ([(id, gt path)]) under ``out``; returns
    (floor -> manifest CSV, parameters recorded with them)."""
    from d2m_bench.baselines.references import NOISE_STD, derangement, segment_rng

    from ..io.audio import load_audio, write_audio
    from ..validity.battery import CLICK, clicks

    gts = [load_audio(path, sr=sr, res_type=resample)[0] for _, path in files]
    bpm = median_tempo(gts, sr)
    perm = derangement(len(files), seed) if len(files) > 1 else np.zeros(1, int)
    manifests = {}
    for name in FLOORS:
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i, (cid, path) in enumerate(files):
            n = len(gts[i])
            if name in ("ground-truth", "shuffled-gt"):
                src = path if name == "ground-truth" else files[perm[i]][1]
                pred = folder / f"{cid}{src.suffix}"
                shutil.copyfile(src, pred)
            else:
                pred = folder / f"{cid}.wav"
                if name == "metronome":
                    y = clicks(np.arange(0.0, n / sr, 60.0 / bpm), sr, n)
                elif name == "white-noise":
                    y = segment_rng(seed, cid).normal(0.0, NOISE_STD, n).astype(np.float32)
                else:
                    y = np.zeros(n, np.float32)
                write_audio(pred, y, sr)
            rows.append({"id": cid, "gt": str(Path(path).resolve()), "pred": str(pred.resolve())})
        manifests[name] = out / f"{name}.csv"
        with open(manifests[name], "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["id", "gt", "pred"])
            writer.writeheader()
            writer.writerows(rows)
    params = {"floors_version": FLOORS_VERSION, "seed": seed, "median_tempo_bpm": bpm,  # recorded with each floor
              "tempo": "median over clips of librosa.feature.tempo", "metronome_click": CLICK,
              "noise_std": NOISE_STD, "shuffle": "Sattolo cyclic derangement over the clips in id order",
              "sample_rate": sr}
    return manifests, params


def cache_folder(protocol_hash: str, gt_sha: str) -> Path:
    from ..io.cache import default_root

    key = hashlib.sha256(f"{protocol_hash}\n{gt_sha}\n{FLOORS_VERSION}".encode()).hexdigest()[:24]
    return default_root() / "floors" / key


def cached_floors(protocol_hash: str, gt_sha: str) -> list:
    """Floor result documents already in the cache for this protocol and gt set (possibly [])."""
    folder = cache_folder(protocol_hash, gt_sha)
    docs = []
    for name in FLOORS:
        try:
            doc = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        ref = doc.get("reference") if isinstance(doc, dict) else None
        if isinstance(ref, dict) and ref.get("floors_version") == FLOORS_VERSION and doc.get("complete") is True:
            docs.append(doc)
    return docs


def compute_floors(doc: dict, *, progress: bool = False, workers: int | None = 1) -> list:
    """Result documents of the five references on the gt set of the run ``doc``, from the cache
    or computed now (and cached). FloorsUnavailable when they cannot be computed here."""
    from ..evaluation import evaluate
    from ..io.atomic import write_text

    gt_set = (doc.get("inputs") or {}).get("gt_set")
    if not isinstance(gt_set, dict):
        raise FloorsUnavailable("the run has no gt-set fingerprint")
    proto = protocol_of(doc)
    have = {d["reference"]["name"]: d for d in cached_floors(proto.hash, gt_set["sha256"])}
    if len(have) == len(FLOORS):
        return [have[n] for n in FLOORS]
    files = gt_files(gt_set)
    folder = cache_folder(proto.hash, gt_set["sha256"])
    audio = folder / "audio"
    if audio.exists():
        shutil.rmtree(audio)
    try:
        manifests, params = write_floors(files, audio, sr=proto.get("audio.sample_rate"),
                                         resample=proto.get("audio.resample", "soxr_hq"))
        out = []
        for name in FLOORS:
            if name in have:
                out.append(have[name])
                continue
            try:
                result = evaluate(manifest=manifests[name], protocol=proto, system=f"floor: {name}",
                                  workers=workers, progress=progress)
            except UserError as exc:
                raise FloorsUnavailable(f"scoring the {name} floor failed: {exc}") from None
            floor_doc = result.to_dict()
            floor_doc["reference"] = {"name": name, "role": role(name), **params}
            write_text(folder / f"{name}.json", json.dumps(floor_doc, allow_nan=False, default=str) + "\n")
            out.append(floor_doc)
        return out
    finally:
        shutil.rmtree(audio, ignore_errors=True)
