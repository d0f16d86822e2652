"""Synthesised audio: signals with known answers, the demo set and MIDI rendering.
"""
