"""Motion-music alignment section of `d2m-bench eval` (FACT BeatAlign, Bailando BAS)."""
