"""Compression frameworks: which model is trained and which serves inference (one file each)."""
