"""What produced the predicted audio: the ``provenance.json`` beside the --pred clips.

`d2m-bench baseline run` writes OUT/provenance.json (baselines/base.py). A run result keeps
its key fields under ``inputs.pred_provenance`` so that a leaderboard row can say which
baseline version, upstream commit and soundfont made the audio it scores.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError

FILENAME = "provenance.json"
_TOP_KEYS = ("baseline", "version", "kind", "upstream", "seed", "d2m_bench_version", "created",
             "checkpoint", "step", "level", "motion_dependence")
_SYNTH_KEYS = ("synth", "synth_version", "soundfont", "soundfont_sha256")


def read_pred_provenance(pred_dir) -> dict | None:
    """Key fields of ``pred_dir/provenance.json``, or None when the folder has none.

    A file that exists but cannot be read is an error: a result must not silently lose the
    record of what made the audio it scores.
    """
    if pred_dir is None:
        return None
    path = Path(pred_dir) / FILENAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"unreadable provenance file ({exc.__class__.__name__}); fix or remove it", path) from None
    if not isinstance(doc, dict):
        raise UserError("provenance file is not a JSON object; fix or remove it", path)
    out = {k: doc[k] for k in _TOP_KEYS if k in doc}
    dataset = doc.get("dataset")
    if isinstance(dataset, dict):
        out["dataset"] = {k: dataset[k] for k in ("name", "split", "sample_rate") if k in dataset}
    synth = doc.get("synth")
    if isinstance(synth, dict):
        out["synth"] = {k: synth[k] for k in _SYNTH_KEYS if k in synth}
    out["file"] = str(path)
    return out


def model_warnings(prov) -> list[str]:
    """Sanity lines that only the provenance can give: `generate` found the model input-independent."""
    motion = (prov or {}).get("motion_dependence")
    if not isinstance(motion, dict) or not motion.get("input_independent"):
        return []
    return [f"the model that generated these clips ignores the dance (provenance.json: shuffling or zeroing the "
            f"motion changes {motion.get('tokens_shuffled')} / {motion.get('tokens_zeroed')} of its tokens); "
            "beat metrics can still score such predictions high"]


def provenance_label(prov) -> str:
    """Short form for a leaderboard cell: ``name vVERSION @upstream sf:SHA12``."""
    if not prov:
        return ""
    parts = []
    name = prov.get("baseline") or (Path(str(prov["checkpoint"])).name if prov.get("checkpoint") else "")
    if name:
        parts.append(f"{name} v{prov['version']}" if prov.get("version") else name)
    if prov.get("step") is not None:
        parts.append(f"step {prov['step']}")
    if prov.get("upstream"):
        parts.append(f"@{prov['upstream']}")
    sha = (prov.get("synth") or {}).get("soundfont_sha256")
    if sha:
        parts.append(f"sf:{str(sha)[:12]}")
    return " ".join(parts)
