"""Data: suites, datasets, the class-incremental stream, pixels and augmentation.

May import api/registry, api/config and records/ (the safe parser, the schema); never run/.
"""
