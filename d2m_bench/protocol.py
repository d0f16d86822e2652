"""Evaluation protocols: declarative TOML files, one per protocol, with a stable hash.

A protocol holds every parameter that changes a number. Its hash is a SHA-256 over the
canonical JSON of those parameters (not its name or description), so two files with the
same parameters share a hash and any changed parameter gives a new one. Overrides from the
command line produce a derived protocol whose name records them and whose hash differs.
"""
from __future__ import annotations

import copy
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .io.cache import config_digest
from .errors import UserError
from .resources import shipped_dir
from . import sections

# ``command`` says which sub-command reads the file (eval or mos); it changes no number.
NON_PARAMETER_KEYS = ("name", "description", "citation", "command")
COMMANDS = ("eval", "mos")

# What an eval protocol may hold. Every key is used: a key the code ignores would make two
# protocols with different hashes give the same numbers (or a typo silently do nothing).
# Besides these, each metric family's table (d2m_bench.sections.REGISTRY; sanity has none).
BASE_TABLES = ("audio", "pairing", "ci", "ranking")  # ranking: optional, d2m_bench.results.directions
# Tables that change no point value (confidence-interval level, replicates, seed): echoed in
# the result but left out of the hash, so changing them never moves a result to another group.
UNHASHED_TABLES = ("ci",)
AUDIO_KEYS = ("sample_rate", "mono", "resample", "length_policy", "expected_seconds", "max_seconds")
LENGTH_POLICIES = ("pred_to_gt", "strict", "min", "none")
RESAMPLERS = ("soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "soxr_qq", "fft", "scipy", "polyphase",
              "kaiser_best", "kaiser_fast")  # kaiser_*: resampy (librosa 0.7.2's default), extra paper-era
PAIRING_RULES = ("auto", "stem", "generation")
# Upper bounds of eval values: far above any sensible setting, low enough that no value can
# make eval allocate absurd arrays (sample_rate = 1e10) or run for days before failing.
_MAX_INT = 1_000_000
_MAX_NUM = 1e6
MAX_SAMPLE_RATE = 384_000  # the highest rate audio hardware and codecs use
MAX_CLIP_SECONDS = 86_400.0
MAX_RESAMPLES = 100_000  # bootstrap resamples (d2m_bench.results.schema uses the same bound)
TEMPO_PRIORS = ("aistpp_music_id", "none")
ALIGN_AGGREGATES = ("mean", "median")


def eval_tables() -> tuple:
    """The tables an eval protocol may hold: the base tables and one per registered section."""
    return BASE_TABLES[:2] + tuple(n for n in sections.REGISTRY if n not in sections.TABLELESS) + BASE_TABLES[2:]


def protocol_dirs() -> list[Path]:
    """Folders searched for ``NAME.toml``, first match wins: the folders listed in
    ``D2M_BENCH_PROTOCOLS`` (separated like PATH), then the protocols shipped with the package."""
    env = os.environ.get("D2M_BENCH_PROTOCOLS", "")
    return [Path(p) for p in env.split(os.pathsep) if p] + [shipped_dir("protocols")]


@dataclass(frozen=True)
class Protocol:
    """One evaluation (or MOS) protocol: every parameter that changes a number.

    Attributes:
        name: The protocol's name (the file's ``name``; a derived protocol appends its overrides).
        description: One line on what it reproduces.
        params: The parameter tables (``audio``, ``pairing``, ``beats``, ``genre``, ...) as dicts.
        source: The TOML file it was read from.
        citation: The paper and code it follows.
        command: The sub-command that reads it, ``eval`` or ``mos``.
    """

    name: str
    description: str
    params: dict
    source: str = ""
    citation: str = ""
    command: str = "eval"

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical JSON of ``params`` (without the unhashed ``ci`` table)."""
        return config_digest({k: v for k, v in self.params.items() if k not in UNHASHED_TABLES})

    @property
    def short_hash(self) -> str:
        """The first 12 hex digits of :attr:`hash`, as listed by ``d2m-bench protocols``."""
        return self.hash[:12]

    def section(self, name: str) -> dict:
        """The parameter table ``name`` (``{}`` if the protocol has none)."""
        return self.params.get(name, {})

    def get(self, dotted: str, default=None):
        """The parameter at a dotted key such as ``"beats.onset.delta"``, or ``default``."""
        node = self.params
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def with_overrides(self, overrides: dict) -> "Protocol":
        """A derived protocol with ``{"section.key": value}`` applied (None values ignored)."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        changed = {k: v for k, v in overrides.items() if self.get(k, object()) != v}
        if not changed:
            return self
        params = copy.deepcopy(self.params)
        for dotted, value in changed.items():
            node = params
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        suffix = ",".join(f"{k}={v}" for k, v in sorted(changed.items()))
        return Protocol(f"{self.name}+{suffix}", self.description, params, self.source, self.citation, self.command)

    def to_dict(self) -> dict:
        """What results echo: name, hash, description, source, command, params (and the fixed analysis)."""
        out = {"name": self.name, "hash": self.hash, "description": self.description,
               "source": self.source, "command": self.command, "params": self.params}
        if self.command == "eval":
            from .features.events import FIXED_ANALYSIS

            # Constants of the analysis that no protocol varies: echoed so that the result says
            # what produced it; a change to them comes with a new toolkit version, not a new hash.
            out["fixed"] = FIXED_ANALYSIS
        return out

    def validate_eval(self) -> "Protocol":
        """Check every parameter `d2m-bench eval` reads, before any audio is touched.

        Raises UserError naming the protocol file and the offending key.
        """
        _EvalCheck(self).run()
        return self


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _EvalCheck:
    def __init__(self, proto: Protocol):
        self.p = proto

    def fail(self, message):
        raise UserError(f"protocol '{self.p.name}': {message}", self.p.source or None)

    def table(self, dotted, required=True) -> dict:
        value = self.p.get(dotted)
        if value is None:
            if required:
                self.fail(f"missing table [{dotted}]")
            return {}
        if not isinstance(value, dict):
            self.fail(f"'{dotted}' must be a table")
        return value

    def keys(self, dotted, table, allowed, required=()):
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            self.fail(f"unknown key(s) in [{dotted}]: {', '.join(unknown)} (allowed: {', '.join(allowed)})")
        missing = [k for k in required if k not in table]
        if missing:
            self.fail(f"[{dotted}] is missing {', '.join(missing)}")

    def choice(self, dotted, value, options):
        if value not in options:
            self.fail(f"{dotted} = {value!r} is not one of {', '.join(options)}")

    def number(self, dotted, value, *, integer=False, minimum=0, strict=True, maximum=None):
        # NaN passes every comparison and inf every lower bound: finiteness is checked first.
        ok = (is_int(value) if integer else is_num(value)) and math.isfinite(value)
        if maximum is None:
            maximum = _MAX_INT if integer else _MAX_NUM
        if not ok or (value <= minimum if strict else value < minimum) or value > maximum:
            kind = "an integer" if integer else "a finite number"
            bound = f"> {minimum}" if strict else f">= {minimum}"
            self.fail(f"{dotted} = {value!r} must be {kind} {bound} and <= {maximum:g}")

    def boolean(self, dotted, value):
        if not isinstance(value, bool):
            self.fail(f"{dotted} = {value!r} must be true or false")

    def run(self):
        from .io.audio import MIX_MODES

        p = self.p
        if p.command != "eval":
            raise UserError(f"protocol '{p.name}' is a {p.command} protocol (for `d2m-bench {p.command}`), "
                            f"not one `d2m-bench eval` can use", p.source or None)
        allowed = eval_tables()
        unknown = sorted(set(p.params) - set(allowed))
        if unknown:
            self.fail(f"unknown table(s) {', '.join(unknown)} for an eval protocol (allowed: {', '.join(allowed)})")
        audio = self.table("audio")
        self.keys("audio", audio, AUDIO_KEYS, required=("sample_rate", "mono", "resample", "length_policy"))
        self.number("audio.sample_rate", audio["sample_rate"], integer=True, minimum=1000, strict=False,
                    maximum=MAX_SAMPLE_RATE)
        self.choice("audio.mono", audio["mono"], MIX_MODES)
        self.choice("audio.resample", audio["resample"], RESAMPLERS)
        if audio["resample"].startswith("kaiser"):
            import importlib.util

            if importlib.util.find_spec("resampy") is None:
                self.fail(f"audio.resample = {audio['resample']!r} needs the resampy package "
                          "(pip install 'd2m-bench[paper-era]')")
        self.choice("audio.length_policy", audio["length_policy"], LENGTH_POLICIES)
        if "expected_seconds" in audio:
            self.number("audio.expected_seconds", audio["expected_seconds"], strict=False, maximum=MAX_CLIP_SECONDS)
        if "max_seconds" in audio:
            self.number("audio.max_seconds", audio["max_seconds"], strict=True, maximum=MAX_CLIP_SECONDS)
        pairing = self.table("pairing", required=False)
        self.keys("pairing", pairing, ("rule",))
        if "rule" in pairing:
            self.choice("pairing.rule", pairing["rule"], PAIRING_RULES)
        self.ci()
        self.ranking()
        for name in sections.REGISTRY:  # each family validates its own table (an absent table: its defaults)
            if name not in sections.TABLELESS:
                sections.section(name).validate(self, self.table(name, required=name == "beats"))

    def ranking(self):
        """Optional [ranking]: metric -> "higher", "lower" or "closer_to:X" (d2m_bench.results.directions)."""
        from .results.directions import parse

        for metric, direction in self.table("ranking", required=False).items():
            try:
                parse(direction)
            except ValueError as exc:
                self.fail(f"ranking.{metric}: {exc}")

    def ci(self):
        from .results.intervals import CI_KEYS

        ci = self.table("ci", required=False)
        self.keys("ci", ci, CI_KEYS)
        if "level" in ci:
            self.number("ci.level", ci["level"])
            if ci["level"] >= 1:
                self.fail(f"ci.level = {ci['level']!r} must be below 1")
        for key in ("n_resamples", "fad_resamples", "fad_inf_steps"):
            if key in ci:
                # resamples x clips indices are drawn at once: bounded as results/schema bounds them
                self.number(f"ci.{key}", ci[key], integer=True, minimum=1,
                            maximum=MAX_RESAMPLES if key == "n_resamples" else None)
        if "seed" in ci:
            self.number("ci.seed", ci["seed"], integer=True, strict=False)
        if "fad_inf_min_fraction" in ci:
            self.number("ci.fad_inf_min_fraction", ci["fad_inf_min_fraction"])
            if ci["fad_inf_min_fraction"] > 1:
                self.fail("ci.fad_inf_min_fraction must be at most 1")


def _parse(path: Path) -> Protocol:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"unreadable protocol file ({exc})", path) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"invalid TOML ({exc})", path) from None
    if "name" not in data:
        raise UserError("protocol file has no 'name'", path)
    params = {k: v for k, v in data.items() if k not in NON_PARAMETER_KEYS}
    # Files without ``command`` (written before it existed) are recognised by their tables.
    command = data.get("command", "mos" if "scale" in params else "eval")
    if command not in COMMANDS:
        raise UserError(f"command = {command!r} is not one of {', '.join(COMMANDS)}", path)
    return Protocol(data["name"], data.get("description", ""), params, str(path), data.get("citation", ""), command)


def available_protocols() -> dict[str, Protocol]:
    """Every protocol by name: the folders in ``D2M_BENCH_PROTOCOLS`` first, then the shipped ones.

    A name found in two folders is taken from the first. Finding none is an error (a
    :class:`~d2m_bench.errors.UserError`): the installation is broken.
    """
    out: dict[str, Protocol] = {}
    dirs = protocol_dirs()
    for folder in dirs:
        if not folder.is_dir():
            raise UserError("D2M_BENCH_PROTOCOLS names a folder that does not exist", folder)
        for path in sorted(folder.glob("*.toml")):
            p = _parse(path)
            out.setdefault(p.name, p)
    if not out:
        raise UserError("no protocol files (*.toml) found in " + os.pathsep.join(map(str, dirs)))
    return out


def load_protocol(name_or_path: str | os.PathLike | Protocol) -> Protocol:
    """A protocol by name (see :func:`available_protocols`) or by path to a TOML file.

    A :class:`Protocol` is returned as it is. An unknown name or a missing file raises
    :class:`~d2m_bench.errors.UserError` listing the known names.

    Examples:
        >>> from d2m_bench import load_protocol
        >>> p = load_protocol("d2m-aistpp-2s")
        >>> p.get("audio.sample_rate"), p.get("beats.variant")
        (22050, 'd2m')
    """
    if isinstance(name_or_path, Protocol):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise UserError("no such protocol file", path)
        return _parse(path)
    known = available_protocols()
    if text not in known:
        from .names import unknown

        raise UserError(unknown("protocol", text, sorted(known)))
    return known[text]
