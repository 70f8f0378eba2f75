"""The leaderboard: records -> tables -> a static site, from ``results/`` alone.

Three steps, each its own module (a module imports only those above it in this list):

    aggregate.py   records -> pandas frames: one row per trial, one per entry, Pareto fronts,
                   per-device latency tables and the checks on the FLOP count
    columns.py     the numeric columns of the tables: meaning, legend, how numbers are shown
    files.py       templates, writing pages and records, building aside and swapping in
    plots.py       the suite pages' matplotlib figures: which to draw, captions, drawing
    entries.py     one entry's page: config, trials, inference cost, provenance, charts
    suite_page.py  one suite version: ranking, display names, slugs, columns, its index card
    build.py       ``build_site``: the whole site, suite versions side by side

Dependency fence (every module here): jinja2, matplotlib (no pyplot), pandas, numpy, the
standard library and ``harness.metrics``; never torch or Ray (``tests/test_site.py`` checks).
Importing this package imports nothing heavy: take what you need from its modules, e.g.
``from harness.leaderboard.build import build_site``.
"""
