"""Per-file features computed in eval's worker pass (onset/beat times, levels), cached by content
and configuration.
"""
