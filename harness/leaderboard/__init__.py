"""The leaderboard: records -> tables -> a static site, from ``results/`` alone.

Three steps (records -> tables -> pages), each module one concept; a module imports only those
above it in this list:

    usable.py          which records' numbers may be shown (every figure in its schema range)
    recipe.py          the training recipe a suite version's entries got, in words
    aggregate.py       records -> pandas frames: one row per trial, one per entry, and the
                       checks on the FLOP count
    fronts.py          Pareto fronts: accuracy against GFLOPs, and against the memory kept
    latencies.py       latency per measurement setting (device, precision, batch, threads)
    columns.py         the numeric columns of the tables: meaning, legend, how numbers are shown
    targets.py         published reference points per suite (``suites/targets/``): read,
                       checked strictly, shown beside the table and on the plots, never ranked
    baselines.py       each compressed entry against its plain baseline: deltas and cost ratios
    files.py           templates, writing pages and records, building aside and swapping in
    figure_style.py    what every figure shares: colours, markers, the GFLOPs axis, labels
    pareto_plot.py     accuracy against GFLOPs with the Pareto front
    comparison_plot.py plain versus enhanced bars per strategy
    plots.py           which figures a suite version gets, their captions, drawing them
    entry_charts.py    an entry's accuracy curve and heatmap
    task_fronts.py     accuracy against GFLOPs after each task, inline SVG (and the index's
                       thumbnail)
    reproduction.py    how an entry's page says to rerun a trial: --set options, the command,
                       the plugin packages to install first
    entries.py         one entry's page: config, trials, inference cost, provenance, reproduce
    suite_page.py      one suite version: ranking, display names, slugs, columns, its index card
    stale.py           records made from a suite file other than the current one: set apart
                       before ranking, listed on their version's page, never ranked
    downloads.py       each suite version's table as CSV and JSON; every record shown as a zip
    method_cards.py    one page per strategy and framework on the board (content read by the
                       command line from the adapters), and their index
    build.py           ``build_site``: the whole site, suite versions side by side

Dependency fence (every module here): jinja2, matplotlib (no pyplot), pandas, numpy, the
standard library, ``harness.evaluation.metrics`` and ``harness.records``; never torch or Ray
(``tests/test_fences.py`` checks).
Importing this package imports nothing heavy: take what you need from its modules, e.g.
``from harness.leaderboard.build import build_site``.
"""
