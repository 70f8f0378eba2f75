"""Running trials: one trial, the grid of a suite, the checks before a run, concurrency,
saving records, and the Ray Tune scheduler (``run/scheduler.py``: the only module importing Ray).
"""
