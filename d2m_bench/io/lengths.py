"""When the protocol's length policy acts on a gt/pred pair.

The faithful variants detect events on each file exactly as loaded, because that is what the
published scripts do; a policy that pads or trims before detection changes the STFT frames and
can add or remove onsets (a zero-padded tail gives a click onset). So for ``d2m`` and ``loris``
the policy acts only where the published script would stop:

``d2m``   Beats_Scores asserts equal 1-s bin counts: ceil(n_gt / sr) != ceil(n_pred / sr).
``loris`` LORIS cuts the gt bins to the prediction's count, then asserts: the prediction has
          more bins than the gt.
``tolerance`` (ours) has no bins: the policy acts whenever the lengths differ (as configured).

Where it acts, the policy is: ``pred_to_gt`` trim or zero-pad the prediction to the gt length
and detect again; ``min`` trim both to the shorter and detect again; ``strict`` stop with an
error (the upstream assert); ``none`` keep the events as loaded (``loris``: the prediction's
extra bins are dropped; ``d2m``: an error, the bins cannot be compared).
"""
from __future__ import annotations

from ..metrics.beats import n_bins


def policy_reason(variant: str, n_gt: int, n_pred: int, sr: int, bin_seconds: float = 1.0) -> str | None:
    """Why the length policy must act on this pair, or None when events are scored as loaded.

    ``n_gt`` and ``n_pred`` are sample counts at the protocol rate, before any policy.
    """
    if variant == "tolerance":
        return f"lengths differ ({n_pred} vs {n_gt} samples)" if n_gt != n_pred else None
    b_gt, b_pred = n_bins(n_gt, sr, bin_seconds), n_bins(n_pred, sr, bin_seconds)
    if variant == "d2m" and b_gt != b_pred:
        return f"bin counts differ ({b_pred} vs {b_gt}): Beats_Scores would stop at its assert"
    if variant == "loris" and b_pred > b_gt:
        return f"prediction has more bins ({b_pred} vs {b_gt}): LORIS would stop at its assert"
    return None
