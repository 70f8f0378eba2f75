"""Inference cost of the module that serves: FLOPs (counted and by formula), op coverage,
model size and latency. May import models/ and records/schema; never run/.
"""
