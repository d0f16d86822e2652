"""Baselines and reference systems for the D2M-GAN comparison (see baselines.base for the contract).

``get(name)`` returns a fresh instance; ``BUILT_IN`` are the ones that run on a built dataset
alone (the adapters also need the upstream system's MIDI).
"""
from __future__ import annotations

from d2m_bench.errors import UserError

from .base import Baseline, run_baseline
from .references import GroundTruth, Metronome, ShuffledGroundTruth, Silence, WhiteNoise
from .symbolic import CMT, Dance2Music, FoleyMusic

REGISTRY = {cls.name: cls for cls in (Dance2Music, CMT, FoleyMusic, GroundTruth, ShuffledGroundTruth,
                                      Silence, WhiteNoise, Metronome)}
BUILT_IN = [name for name, cls in REGISTRY.items() if not cls.needs_upstream]


def get(name: str) -> Baseline:
    if name not in REGISTRY:
        from d2m_bench.names import unknown

        raise UserError(unknown("baseline", name, REGISTRY))
    return REGISTRY[name]()


__all__ = ["Baseline", "BUILT_IN", "REGISTRY", "get", "run_baseline"]
