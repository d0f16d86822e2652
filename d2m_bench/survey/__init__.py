"""The MOS listening test: stimuli and assignment (build), web server (serve), ratings (export)."""
