"""The shape of an eval result file, checked before `report`, `compare` or `leaderboard` use one.

A result file is data from outside: 9 of 12 malformed results gave tracebacks in `report`,
``gt_samples = 1e12`` made the beat figure run for 11 minutes and ``params.ci.n_resamples =
1e9`` asked the bootstrap for 89 GiB. ``check_result`` walks every field those commands read
and refuses the first that is missing, of the wrong type, not finite or out of bounds, in one
line naming the file and the field (``per_clip[3].gt_samples``). Unknown fields are allowed
(later versions add some); only what is read is typed.
"""
from __future__ import annotations

import math

from ..errors import UserError
from ..io.text import one_line
from ..protocol import MAX_CLIP_SECONDS, MAX_RESAMPLES, MAX_SAMPLE_RATE

MAX_RESAMPLE_CELLS = 10 ** 8     # resamples x clips drawn at once (int64 indices: 800 MB)
MAX_CLIPS = 1_000_000
MAX_SECONDS = int(MAX_CLIP_SECONDS)  # one clip, as the protocol check bounds audio.expected_seconds
MAX_NAME = 200                   # system names, metric names, clip ids
MAX_EVENTS = 1_000_000           # event times listed for one clip


class _Bad(Exception):
    def __init__(self, where: str, what: str):
        super().__init__(f"{where}: {what}")


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _name(where, v, *, optional=False):
    if v is None and optional:
        return
    if not isinstance(v, str) or not v or len(v) > MAX_NAME:
        raise _Bad(where, f"must be a text of 1..{MAX_NAME} characters, got {type(v).__name__}")


def _number(where, v, *, optional=True, lo=None, hi=None):
    if v is None and optional:
        return
    if not _num(v):
        raise _Bad(where, f"must be a finite number, got {one_line(repr(v))[:40]}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _Bad(where, f"{v!r} is out of range [{lo}, {hi}]")


def _whole(where, v, lo, hi, *, optional=True):
    if v is None and optional:
        return
    if not _int(v) or not lo <= v <= hi:
        raise _Bad(where, f"must be a whole number in {lo}..{hi:,}, got {one_line(repr(v))[:40]}")


def _dict(where, v, *, optional=False) -> dict:
    if v is None and optional:
        return {}
    if not isinstance(v, dict):
        raise _Bad(where, f"must be an object, got {type(v).__name__}")
    return v


def _list(where, v, *, optional=False, limit=MAX_CLIPS) -> list:
    if v is None and optional:
        return []
    if not isinstance(v, list):
        raise _Bad(where, f"must be a list, got {type(v).__name__}")
    if len(v) > limit:
        raise _Bad(where, f"holds {len(v):,} entries, more than {limit:,}")
    return v


def check_ci(where: str, ci) -> None:
    ci = _dict(where, ci, optional=True)
    _number(f"{where}.level", ci.get("level"), lo=1e-9, hi=1 - 1e-9)
    _whole(f"{where}.n_resamples", ci.get("n_resamples"), 1, MAX_RESAMPLES)
    _whole(f"{where}.seed", ci.get("seed"), 0, 2 ** 63)
    for key in ("percentile", "bca"):
        pair = ci.get(key)
        if pair is not None:
            if not isinstance(pair, list) or len(pair) != 2:
                raise _Bad(f"{where}.{key}", "must be [low, high]")
            for i, v in enumerate(pair):
                _number(f"{where}.{key}[{i}]", v)


def _aggregate(doc):
    agg = _dict("aggregate", doc.get("aggregate"))
    for name, m in agg.items():
        _name("aggregate (a metric name)", name)
        where = f"aggregate.{name}"
        if not isinstance(m, dict):
            continue  # tolerated and skipped by every reader (sections may note a reason)
        _number(f"{where}.value", m.get("value"))
        for key in ("std", "pooled"):
            _number(f"{where}.{key}", m.get(key))
        _whole(f"{where}.n", m.get("n"), 0, MAX_CLIPS)
        for key in ("unit", "ci_column", "ci_note"):
            if m.get(key) is not None and not isinstance(m.get(key), str):
                raise _Bad(f"{where}.{key}", "must be text")
        if "higher_is_better" in m and not isinstance(m["higher_is_better"], bool):
            raise _Bad(f"{where}.higher_is_better", "must be true or false")
        check_ci(f"{where}.ci", m.get("ci"))
        inf = _dict(f"{where}.fad_inf", m.get("fad_inf"), optional=True)
        for key in ("value", "r2"):
            _number(f"{where}.fad_inf.{key}", inf.get(key))


def _per_clip(doc, sr):
    rows = _list("per_clip", doc.get("per_clip"))
    max_samples = int(MAX_SECONDS * sr)
    for i, r in enumerate(rows):
        where = f"per_clip[{i}]"
        r = _dict(where, r)
        _name(f"{where}.id", r.get("id"))
        for side in ("gt", "pred"):
            if r.get(side) is not None and not isinstance(r.get(side), str):
                raise _Bad(f"{where}.{side}", "must be a path (text)")
            _whole(f"{where}.{side}_samples", r.get(f"{side}_samples"), 0, max_samples)
            events = _list(f"{where}.{side}_events", r.get(f"{side}_events"), optional=True, limit=MAX_EVENTS)
            for j, t in enumerate(events):
                _number(f"{where}.{side}_events[{j}]", t, optional=False, lo=0, hi=MAX_SECONDS)
            sha = r.get(f"{side}_sha256")
            if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
                raise _Bad(f"{where}.{side}_sha256", "must be 64 hex digits")
        for key, v in r.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise _Bad(f"{where}.{key}", "is not finite")


def _protocol(doc) -> int:
    proto = _dict("protocol", doc.get("protocol"))
    _name("protocol.name", proto.get("name"), optional=True)
    if proto.get("hash") is not None and not (isinstance(proto["hash"], str) and len(proto["hash"]) <= 128):
        raise _Bad("protocol.hash", "must be text")
    params = _dict("protocol.params", proto.get("params"), optional=True)
    audio = _dict("protocol.params.audio", params.get("audio"), optional=True)
    _whole("protocol.params.audio.sample_rate", audio.get("sample_rate"), 1000, MAX_SAMPLE_RATE)
    beats = _dict("protocol.params.beats", params.get("beats"), optional=True)
    _number("protocol.params.beats.bin_seconds", beats.get("bin_seconds"), lo=1e-3, hi=MAX_SECONDS)
    onset = _dict("protocol.params.beats.onset", beats.get("onset"), optional=True)
    _whole("protocol.params.beats.onset.hop_length", onset.get("hop_length"), 1, 65536)
    check_ci("protocol.params.ci", params.get("ci"))
    return audio.get("sample_rate") or 22050


def check_result(doc, path) -> dict:
    """``doc`` when it is a well-formed, complete eval result; else UserError naming the field."""
    try:
        if not isinstance(doc, dict):
            raise _Bad("(top level)", f"must be an object, got {type(doc).__name__}")
        if doc.get("complete") is not True:
            raise UserError("result is marked incomplete", path)
        _name("system", doc.get("system"), optional=True)
        sr = _protocol(doc)
        _aggregate(doc)
        _list("per_clip", doc.get("per_clip"))
        _per_clip(doc, sr)
        for i, w in enumerate(_list("warnings", doc.get("warnings"), optional=True)):
            if not isinstance(w, str):
                raise _Bad(f"warnings[{i}]", "must be text")
        for name, sec in _dict("sections", doc.get("sections"), optional=True).items():
            _dict(f"sections.{name}", sec)
        excluded = _dict("excluded", doc.get("excluded"), optional=True)
        for i, e in enumerate(_list("excluded.clips", excluded.get("clips"), optional=True)):
            _dict(f"excluded.clips[{i}]", e)
        inputs = _dict("inputs", doc.get("inputs"), optional=True)
        for key in ("pred", "gt", "manifest"):
            if inputs.get(key) is not None and not isinstance(inputs[key], str):
                raise _Bad(f"inputs.{key}", "must be a path (text)")
        for i, row in enumerate(_list("leaderboard", doc.get("leaderboard"), optional=True)):
            _dict(f"leaderboard[{i}]", row)
    except _Bad as exc:
        raise UserError(f"malformed result: {one_line(exc)}", path) from None
    return doc
