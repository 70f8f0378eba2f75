"""Evaluation: the class-incremental protocol and the metrics of the accuracy matrix.

``metrics`` is torch-free (records/ and leaderboard/ use it); ``protocol`` runs models.
"""
