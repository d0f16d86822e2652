"""Metric validity, measured: a fixed battery of controlled transformations of the gt
(:mod:`.battery`), scored under a protocol and tested against identity (:mod:`.run`), shown as
a table, one "metric card" per metric and a report page with one figure per metric (:mod:`.page`)."""
