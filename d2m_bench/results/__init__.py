"""What eval produces and what reads it: the result object, confidence intervals, paired
comparison, the leaderboard and plain-text tables.
"""
