"""The ground-truth set a result was scored on, as part of the result's identity.

Two runs are comparable only when they scored the same gt clips: same protocol hash, same
comparable key, same gt set. The fingerprint of a set is

    sha256( "\\n".join(f"{id}\\t{sha256(file bytes)}" for id in sorted(ids)) + "\\n" )

over the clips a run scored, with ``n`` and the hash of the id list alone
(``ids_sha256`` = :func:`segment_list_sha256` of the ids). A paper's table can only be
identified by its segment list (the audio it used is not published byte for byte), so a
reported row names its set by ``segment_list_sha256``; a measured run sits in the paper's table
when the ids it scored hash to that value.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..data.dataset import segment_list_sha256  # noqa: F401  (the list identity, defined with the datasets)

GT_SET_SCHEMA = 1


def content_sha256(clips) -> str:
    """SHA-256 over ``id<TAB>file sha256`` lines of ``[(id, sha256), ...]``, sorted by id."""
    lines = "".join(f"{cid}\t{sha}\n" for cid, sha in sorted(clips))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


# Segment lists that ship with d2m-bench and that papers report on: list file -> title.
KNOWN_LISTS = {
    "aist_audio_test_segment.txt": "AIST++ D2M-GAN test list",
    "tiktok_audio_test_segment.txt": "TikTok D2M-GAN test list",
}


def known_sets() -> dict:
    """segment_list_sha256 -> "title, N segments" for the shipped D2M-GAN lists."""
    from ..data import list_stems

    out = {}
    for name, title in KNOWN_LISTS.items():
        ids = list_stems(name)
        out[segment_list_sha256(ids)] = f"{title}, {len(ids)} segments"
    return out


def fingerprint(per_clip, *, data=None, split=None) -> dict:
    """The gt-set record of a result from its per-clip rows (``id``, ``gt`` path).

    ``data`` (a built dataset's root, or None) adds the dataset's name, the split and the hash
    of that split's segment list (from the builder's ``dataset.json`` when it recorded one,
    else computed from the manifest)."""
    from ..io.audio import media_digest

    # the worker pass hashed every gt file already (gt_sha256, the cache key's digest): not again
    folders = {}
    clips = sorted((str(r["id"]), r.get("gt_sha256") or media_digest(r["gt"]), _resolved(r["gt"], folders))
                   for r in per_clip)
    root = os.path.commonpath([c[2] for c in clips]) if clips else ""
    if clips and len(clips) == 1:
        root = str(Path(root).parent)
    out = {"schema": GT_SET_SCHEMA, "n": len(clips), "sha256": content_sha256([(c[0], c[1]) for c in clips]),
           "ids_sha256": segment_list_sha256([c[0] for c in clips]), "root": root,
           "clips": [[cid, sha, os.path.relpath(path, root)] for cid, sha, path in clips]}
    if data is not None:
        out["dataset"] = dataset_identity(data, split)
    name = known_sets().get(out["ids_sha256"])
    if name:
        out["known_list"] = name
    return out


def _resolved(path, folders: dict) -> str:
    """``str(Path(path).resolve())``, resolving each folder once (``folders`` memoises them):
    a file that is not itself a link resolves to its resolved folder plus its name."""
    if ".." in Path(path).parts:  # abspath would fold "link/.." without following the link
        return str(Path(path).resolve())
    path = os.path.abspath(path)
    folder, name = os.path.split(path)
    try:
        is_link = os.path.islink(path)
    except OSError:
        is_link = True
    if is_link or name in ("", ".", ".."):
        return str(Path(path).resolve())
    if folder not in folders:
        folders[folder] = str(Path(folder).resolve())
    return os.path.join(folders[folder], name)


def dataset_identity(root, split) -> dict:
    """Name, split and segment-list hash of a built dataset's split."""
    from ..data.dataset import Dataset

    from ..errors import UserError

    ds = root if hasattr(root, "segments") else Dataset(root)
    recorded = (ds.info.builder or {}).get("segment_lists") or {}
    try:
        ids = [s.segment_id for s in ds.segments(split)]
    except UserError:  # --data given for motion or labels of clips outside a split of that name
        return {"name": ds.info.name, "split": split, "n_segments": 0, "segment_list_sha256": None}
    computed = segment_list_sha256(ids)
    out = {"name": ds.info.name, "split": split, "n_segments": len(ids), "segment_list_sha256": computed}
    if recorded.get(split) and recorded[split] != computed:
        out["recorded_segment_list_sha256"] = recorded[split]
    return out


def key(gt_set) -> str:
    """The leaderboard's grouping key of a measured run's set: ``gt:<content sha256>``; "" for a
    result without a fingerprint (made before d2m-bench recorded them)."""
    if not isinstance(gt_set, dict) or not isinstance(gt_set.get("sha256"), str):
        return ""
    return "gt:" + gt_set["sha256"]


def title(gt_set) -> str:
    """A human title for a measured run's set: the known list, else dataset/split, else the folder."""
    if not isinstance(gt_set, dict):
        return "unidentified gt set (result made before gt sets were recorded)"
    n = gt_set.get("n", "?")
    sha = str(gt_set.get("sha256", ""))[:12]
    ds = gt_set.get("dataset") if isinstance(gt_set.get("dataset"), dict) else None
    if gt_set.get("known_list"):
        head = gt_set["known_list"]
    elif ds:
        head = f"{ds.get('name')} {ds.get('split')} split"
    else:
        head = "folder " + "/".join(Path(str(gt_set.get("root", "gt"))).parts[-2:])
    return f"{head}: {n} clips ({sha})"


def annotate(result):
    """Add to an :class:`~d2m_bench.results.result.EvalResult` what identifies and qualifies it on
    a leaderboard: ``inputs.gt_set`` (:func:`fingerprint`) and, with 4 clips or more, the
    shifted-pairing section (:func:`d2m_bench.results.flags.pairing_check`) and its warning."""
    from .flags import pairing_check

    result.inputs["gt_set"] = fingerprint(result.per_clip, data=result.inputs.get("data"),
                                          split=result.inputs.get("split"))
    check = pairing_check(result.per_clip)
    if check.get("status") == "ok":
        result.sections["pairing"] = check
        result.warnings += check["warnings"]
    return result
