"""Unknown names (protocols, embedders, weights backends, baselines): "did you mean" from the
known list, so a typo is one look away from its fix."""
from __future__ import annotations

import difflib


def did_you_mean(name: str, known) -> str:
    """' (did you mean 'x'?)' for the closest known names, or '' when none is close."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=2, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"


def unknown(kind: str, name: str, known) -> str:
    """The message for an unknown name: the suggestion first, then every known name."""
    known = list(known)
    return f"unknown {kind} '{name}'{did_you_mean(name, known)}; known: {', '.join(known)}"
