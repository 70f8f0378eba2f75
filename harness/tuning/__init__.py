"""Tuning a method's hyperparameters fairly: on validation data only, under the suite's budget.

``space`` joins what the strategy and framework declare tunable; ``validation_trial`` learns a
suite with one sampled config and scores it on the validation split (the test split is never
reachable from it); ``search`` runs the seeded Ray Tune search under the suite's budget;
``tuned_configs`` writes and finds the winner with its provenance, for ``cilbench run``.
"""
