"""benchmarks/suite_table.py: the note's table, read through the leaderboard's own checks."""

from __future__ import annotations

from benchmarks.suite_table import HEADER, suite_table
from tests.record_factory import make_record, write_records


def test_one_row_per_entry_with_means_over_its_seeds(tmp_path) -> None:
    records = [
        make_record(label="lwf", seed=1, acc=[[98.0, None], [60.0, 90.0]]),
        make_record(label="lwf", seed=2, acc=[[96.0, None], [70.0, 90.0]]),
        make_record(label="lwf", seed=3, debug=True),  # debug: never counted
        make_record(label="lwf", seed=4, suite_version=0),  # an older version: left out
    ]
    write_records(records, tmp_path)
    text = suite_table(tmp_path, "digits-5split")
    assert text.startswith("digits-5split v1, 2 trials")
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| lwf")]
    assert len(rows) == 1
    row = dict(zip(HEADER, [cell.strip("| ") for cell in rows[0]], strict=True))
    # Final ACC: the last row's mean over both tasks, weighted by test samples (100 each).
    assert row["ACC %"] == "77.5 ± 3.5" and row["seeds"] == "2"
    assert row["GFLOPs task 1"] == row["GFLOPs task T"] == "0.5"
