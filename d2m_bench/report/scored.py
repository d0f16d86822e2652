"""Which audio a report may copy: only the files that were scored.

A result file is data from outside: ``per_clip[0].gt = ~/.ssh/id_rsa`` once had the report copy
the key into ``audio/``, the folder meant for publishing. A clip is copied only when its path
resolves inside the folders the result records as its inputs (``inputs.pred``/``inputs.gt``, or
the manifest's folder), it is a regular file that holds audio, and its SHA-256 equals the one
eval recorded for it (``gt_sha256``/``pred_sha256``).
"""
from __future__ import annotations

from pathlib import Path

from ..io.audio import declared_seconds
from ..io.cache import file_digest


def _roots(doc) -> list[Path]:
    inputs = doc.get("inputs") if isinstance(doc.get("inputs"), dict) else {}
    roots = [inputs.get("pred"), inputs.get("gt")]
    if isinstance(inputs.get("manifest"), str):
        roots.append(str(Path(inputs["manifest"]).parent))
    out = []
    for r in roots:
        if isinstance(r, str) and r:
            try:
                out.append(Path(r).expanduser().resolve())
            except (OSError, RuntimeError):
                pass
    return out


def scored_file(doc, row, side: str) -> tuple[Path | None, str]:
    """(path, "") when ``row[side]`` may be copied, else (None, why it is left out)."""
    value = row.get(side)
    if not isinstance(value, str) or not value:
        return None, "no file recorded"
    try:
        path = Path(value).expanduser().resolve()
    except (OSError, RuntimeError):
        return None, "path cannot be resolved"
    if not any(path.is_relative_to(root) for root in _roots(doc)):
        return None, "not inside the result's recorded pred/gt folders"
    if not path.is_file():
        return None, "file not found"
    want = row.get(f"{side}_sha256")
    if not isinstance(want, str) or len(want) != 64:
        return None, "no content hash recorded at eval time (re-run eval with this d2m-bench)"
    if declared_seconds(path) is None:
        return None, "not an audio file"
    try:
        if file_digest(path) != want:
            return None, "content differs from the file that was scored"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
    return path, ""
