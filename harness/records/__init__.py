"""Records, torch- and Ray-free: the schema, reading/validating/writing record files,
provenance, and the safe parser for every JSON/YAML a user hands in (tests check the fence).
"""
