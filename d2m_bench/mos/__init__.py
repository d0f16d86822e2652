"""Subjective evaluation: ratings files, rater screening, MOS statistics and aggregation."""
