"""The leaderboard's view of inference cost: FLOP-count checks, model size, latency per device.

Newer records carry ``uncounted_ops``, ``counter_disagreement_pct``, ``param_bytes``,
``param_dtypes``, ``nonzero_params_millions``, ``sparsity_pct`` and ``latencies``; older ones
lack them and must show "not measured", never crash or borrow another record's figure.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.leaderboard.aggregate import (
    counter_disagreement_pct,
    records_to_frame,
    summarize,
    uncounted_ops,
)
from harness.leaderboard.build import build_site
from harness.leaderboard.columns import COLUMNS, SIZE, device_text, gflops_flags, suite_columns
from harness.leaderboard.latencies import (
    LatencySetting,
    latency_frame,
    summarize_latencies,
    trial_latencies,
)
from harness.leaderboard.usable import unusable_reason
from tests.record_factory import NEWER_COST_KEYS, latency, make_record, with_hardware
from tests.test_site import Page

MHA = "aten._native_multi_head_attention.default"
H200 = "NVIDIA H200"


def older(record: dict) -> dict:
    """``record`` as made before the newer cost fields (whatever the factory's defaults)."""
    for key in NEWER_COST_KEYS:
        record["inference_cost"].pop(key, None)
    return record


def gpu_latencies(cpu_ms: float, *, threads: int = 2) -> list[dict]:
    """What a trial on a GPU measures: CPU batch 1, GPU batch 1 and a throughput batch."""
    return [
        latency(cpu_ms, threads=threads),
        latency(0.4, device="cuda", device_name=H200, precision="bf16", threads=None),
        latency(8.0, device="cuda", device_name=H200, precision="bf16", batch_size=256,
                threads=None),
    ]  # fmt: skip


# ------------------------------------------------------------------------- aggregation


def test_uncounted_ops_are_none_when_not_checked_and_a_union_per_entry() -> None:
    assert uncounted_ops(older(make_record())["inference_cost"]) is None
    assert uncounted_ops({"uncounted_ops": []}) == ()
    records = [
        make_record(seed=1, uncounted_ops=[MHA, "aten.foo.default"]),
        make_record(seed=2, uncounted_ops=[]),
        older(make_record(seed=3)),  # says nothing
        make_record(label="icarl", seed=1, uncounted_ops=[]),
        older(make_record(label="ssil", seed=1)),
    ]
    summary = summarize(records_to_frame(records)).set_index("label")
    assert summary.loc["lwf", "uncounted_ops"] == (MHA, "aten.foo.default")  # sorted
    assert summary.loc["icarl", "uncounted_ops"] == ()
    assert summary.loc["ssil", "uncounted_ops"] is None
    assert summary["gflops_in_doubt"].to_dict() == {"icarl": False, "lwf": True, "ssil": False}


def test_counter_disagreement_prefers_the_record_and_falls_back_to_the_two_counts() -> None:
    assert counter_disagreement_pct({"counter_disagreement_pct": 0.25}) == 0.25
    older = {"gflops_per_image_torch": 2.0, "gflops_per_image_ptflops": 1.9}
    assert counter_disagreement_pct(older) == pytest.approx(5.0)
    assert counter_disagreement_pct({"gflops_per_image_torch": 2.0}) is None
    assert counter_disagreement_pct({"gflops_per_image_torch": 0.0,
                                     "gflops_per_image_ptflops": 0.0}) == 0.0  # fmt: skip
    records = [make_record(seed=1, counter_disagreement_pct=0.5),
               make_record(seed=2, counter_disagreement_pct=3.0),
               make_record(label="icarl", seed=1, counter_disagreement_pct=1.0)]  # fmt: skip
    summary = summarize(records_to_frame(records)).set_index("label")
    assert summary.loc["lwf", "counter_disagreement_max_pct"] == 3.0
    assert summary.loc["lwf", "gflops_in_doubt"]
    assert not summary.loc["icarl", "gflops_in_doubt"]  # exactly at the limit is not beyond it


def test_size_and_sparsity_are_averaged_and_missing_ones_counted() -> None:
    records = [
        make_record(seed=1, param_bytes=4_000_000, nonzero_params_millions=0.5, sparsity_pct=50.0),
        make_record(seed=2, param_bytes=4_000_000, nonzero_params_millions=0.7, sparsity_pct=30.0),
        older(make_record(seed=3)),
    ]
    row = summarize(records_to_frame(records)).iloc[0]
    assert (row["param_bytes"], row["param_bytes_std"], row["param_bytes_count"]) == (4e6, 0, 2)
    assert row["sparsity_pct"] == 40.0 and row["nonzero_params_millions"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("sparsity_pct", 120.0, "sparsity_pct is 120.0"),
        ("counter_disagreement_pct", -1.0, "counter_disagreement_pct is -1.0"),
        ("uncounted_ops", "aten.mm", "uncounted_ops is not a list"),
        ("param_dtypes", {"float32": -3}, "param_dtypes is not an object"),
        ("latencies", [{"device": "cpu"}], "latencies[0] has no device_name"),
        ("latencies", [dict(latency(1.0), ms_per_batch=math.nan)], "ms_per_batch nan"),
        ("latencies", [dict(latency(1.0), batch_size=0)], "batch_size 0"),
        ("latencies", [dict(latency(1.0), threads=0)], "threads 0"),
    ],
)
def test_malformed_newer_fields_make_a_record_unusable(field, value, problem) -> None:
    record = make_record(**{field: value})
    reason = unusable_reason(record)
    assert reason is not None and problem in reason


def test_an_older_record_has_one_cpu_latency_on_the_machine_its_provenance_names() -> None:
    record = with_hardware(older(make_record(latency_ms=4.0)), processor="AMD EPYC 9654",
                           torch_threads=8)  # fmt: skip
    [measured] = trial_latencies(record)
    assert measured.setting == LatencySetting("cpu", "AMD EPYC 9654", "fp32", 1, 1)
    assert (measured.ms_per_batch, measured.images_per_s) == (4.0, 250.0)
    del record["inference_cost"]["latency_ms_b1"]
    assert trial_latencies(record) == []


def test_latencies_are_summarized_per_setting_and_thread_counts_never_mixed() -> None:
    records = [
        make_record(seed=1, latencies=gpu_latencies(3.0, threads=1)),
        make_record(seed=2, latencies=gpu_latencies(5.0, threads=2)),
        make_record(seed=3, latencies=gpu_latencies(7.0, threads=2)),
    ]
    summary = summarize_latencies(latency_frame(records))
    rows = summary.to_dict("records")
    by_where = {device_text(row["setting"]): row for row in rows}
    assert list(by_where) == ["CPU b1 (1 thr)", "CPU b1 (2 thr)", "NVIDIA H200 bf16 b1",
                              "NVIDIA H200 bf16 b256"]  # fmt: skip
    assert by_where["CPU b1 (1 thr)"]["ms_per_batch"] == 3.0
    assert by_where["CPU b1 (1 thr)"]["ms_per_batch_count"] == 1
    assert by_where["CPU b1 (2 thr)"]["ms_per_batch"] == 6.0
    assert by_where["CPU b1 (2 thr)"]["ms_per_batch_std"] == pytest.approx(math.sqrt(2.0))
    assert by_where["NVIDIA H200 bf16 b256"]["images_per_s"] == 32_000.0
    assert by_where["NVIDIA H200 bf16 b256"]["images_per_s_std"] == 0.0
    assert by_where["NVIDIA H200 bf16 b1"]["ms_per_batch_count"] == 3


# ------------------------------------------------------------------------------ columns


def test_latency_columns_name_their_device_and_are_one_per_setting() -> None:
    settings = [
        LatencySetting("cuda", H200, "bf16", 256, None),
        LatencySetting("cpu", "cpu", "fp32", 1, 2),
        LatencySetting("cuda", H200, "bf16", 1, None),
        LatencySetting("cpu", "cpu", "fp32", 1, 2),  # the same setting twice: one column
        LatencySetting("cpu", "Intel Xeon", "fp32", 1, None),
    ]
    columns = suite_columns(settings, with_size=True)
    assert columns[: len(COLUMNS) + 1] == (*COLUMNS, SIZE)
    extra = columns[len(COLUMNS) + 1 :]
    assert [(c.header, c.short_unit, c.qualifier, c.better) for c in extra] == [
        ("latency", "ms", "CPU Intel Xeon b1 (threads not recorded)", "lower"),
        ("latency", "ms", "CPU b1 (2 thr)", "lower"),
        ("latency", "ms", "NVIDIA H200 bf16 b1", "lower"),
        ("throughput", "img/s", "NVIDIA H200 bf16 b256", "higher"),
    ]
    assert [c.key for c in extra] == [
        "latency-cpu-intel-xeon-b1-threads-not-recorded",
        "latency-cpu-b1-2-thr",
        "latency-nvidia-h200-bf16-b1",
        "latency-nvidia-h200-bf16-b256",
    ]
    assert suite_columns([], with_size=False) == COLUMNS


def test_cpu_models_are_shortened_in_headers_unless_two_would_read_alike() -> None:
    slow, fast = (f"Intel(R) Xeon(R) Gold 6338 CPU @ {ghz}GHz" for ghz in ("2.00", "2.60"))
    [column] = suite_columns([LatencySetting("cpu", slow, "fp32", 1, 4)], with_size=False)[-1:]
    assert column.qualifier == "CPU Intel Xeon Gold 6338 b1 (4 thr)"
    assert slow in column.unit  # the legend names it in full
    both = suite_columns([LatencySetting("cpu", name, "fp32", 1, 4) for name in (slow, fast)],
                         with_size=False)[-2:]  # fmt: skip
    assert [c.qualifier for c in both] == [f"CPU {slow} b1 (4 thr)", f"CPU {fast} b1 (4 thr)"]
    assert len({c.key for c in both}) == 2


def test_gflops_flags() -> None:
    assert gflops_flags(None, math.nan) == () and gflops_flags((), 1.0) == ()
    [ops] = gflops_flags((MHA,), None)
    assert ops.mark == "⚠ uncounted ops" and MHA in ops.detail
    [apart] = gflops_flags(None, 2.5)
    assert apart.mark == "⚠ counters 2.5% apart"


# -------------------------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    records = [
        # An older entry: only latency_ms_b1 (1 thread), nothing of the newer fields.
        *(older(make_record(label="lwf", seed=s, latency_ms=2.0)) for s in (1, 2)),
        # A newer entry that ran on a GPU, its counter missing attention.
        *(make_record(label="vit", seed=s, gflops=0.3, latencies=gpu_latencies(4.0),
                      uncounted_ops=[MHA] if s == 1 else [], counter_disagreement_pct=0.1,
                      param_bytes=304_000, param_dtypes={"float32": 11_000, "qint8": 65_000},
                      nonzero_params_millions=0.076, sparsity_pct=0.0)
          for s in (1, 2)),
        # A newer CPU-only entry whose two counters disagree, seeds on 1 and 2 threads.
        make_record(label="icarl", seed=1, gflops=0.2, latencies=[latency(3.0, threads=1)],
                    uncounted_ops=[], counter_disagreement_pct=4.0),
        make_record(label="icarl", seed=2, gflops=0.2, latencies=[latency(5.0, threads=2)],
                    uncounted_ops=[], counter_disagreement_pct=0.0),
    ]  # fmt: skip
    return build_site(records, tmp_path_factory.mktemp("site")).parent


def table(page: Page) -> dict[str, dict[str, str]]:
    """The suite table as entry -> header -> cell text."""
    headers, *rows = page.tables["leaderboard"]
    return {row[0]: dict(zip(headers, row, strict=True)) for row in rows}


def test_one_latency_column_per_device_and_thread_count_with_dashes(site: Path) -> None:
    page = Page(site / "suites" / "digits-5split-v1.html")
    rows = table(page)
    assert rows["lwf"]["latency ms CPU b1 (1 thr)"] == "2"
    assert rows["lwf"]["latency ms CPU b1 (2 thr)"] == "—"
    assert rows["lwf"]["latency ms NVIDIA H200 bf16 b1"] == "—"
    assert rows["lwf"]["throughput img/s NVIDIA H200 bf16 b256"] == "—"
    assert rows["vit"]["latency ms CPU b1 (2 thr)"] == "4"
    assert rows["vit"]["latency ms NVIDIA H200 bf16 b1"] == "0.4"
    assert rows["vit"]["throughput img/s NVIDIA H200 bf16 b256"] == "3.2e+04"
    # Seeds measured with 1 and 2 threads are two cells, each saying it holds one seed.
    assert rows["icarl"]["latency ms CPU b1 (1 thr)"] == "3 (1 of 2 seeds)"
    assert rows["icarl"]["latency ms CPU b1 (2 thr)"] == "5 (1 of 2 seeds)"
    assert rows["vit"]["size MB"] == "0.304" and rows["lwf"]["size MB"] == "—"
    # Every column is defined in the legend, its device named as recorded.
    for key in ("latency-cpu-b1-1-thr", "latency-nvidia-h200-bf16-b256", "param_bytes"):
        assert f"metric-{key}" in page.ids
    assert "Wall-clock time of one batch-1 prediction, NVIDIA H200 bf16 b1." in page.page_text


def test_gflops_in_doubt_are_flagged_in_the_table_and_on_the_plot(site: Path) -> None:
    page = Page(site / "suites" / "digits-5split-v1.html")
    rows = table(page)
    assert rows["vit"]["GFLOPs G/img"] == "0.3 ⚠ uncounted ops"
    assert rows["icarl"]["GFLOPs G/img"] == "0.2 ⚠ counters 4% apart"
    assert rows["lwf"]["GFLOPs G/img"] == "0.5"
    html = page.path.read_text(encoding="utf-8")
    assert 'title="the served model runs ops without a FLOP formula' in html and MHA in html
    svg = (site / "plots" / "digits-5split-v1-pareto-aia.svg").read_text(encoding="utf-8")
    assert "GFLOPs in doubt" in svg


def test_the_entry_page_details_the_cost(site: Path) -> None:
    suite = Page(site / "suites" / "digits-5split-v1.html")
    vit = Page(suite.link_to("/vit-"))
    assert "uncounted-ops" in vit.ids and MHA in vit.page_text
    cost = {row[0]: row for row in vit.rows("cost-table")}
    assert cost["1"][1:] == ["torch 0.3 / ptflops 0.3: 0.1% apart", f"⚠ {MHA}", "0.304",
                             "qint8 65,000 · float32 11,000", "0.076", "0"]  # fmt: skip
    assert cost["2"][2] == "none"
    latencies = vit.rows("latency-table")
    assert [row[0] for row in latencies] == ["CPU b1 (2 thr)"] * 2 + ["NVIDIA H200 bf16 b1"] * 2 + [
        "NVIDIA H200 bf16 b256"
    ] * 2
    assert latencies[-1][2:] == [H200, "bf16", "256", "—", "8", "3.2e+04"]
    summary = {row[0]: row[1] for row in vit.rows("summary-table")}
    assert summary["non-zero params"] == "0.076" and summary["sparsity"] == "0"

    icarl = Page(suite.link_to("/icarl-"))
    assert "counter-disagreement" in icarl.ids and "uncounted-ops" not in icarl.ids
    seeds = {row[0]: row for row in icarl.rows("per-seed")}
    assert "⚠ counters 4% apart" in seeds["1"][6] and "⚠" not in seeds["2"][6]

    lwf = Page(suite.link_to("/lwf-"))  # older records: nothing claimed, nothing flagged
    assert not {"uncounted-ops", "counter-disagreement"} & lwf.ids
    assert [row[2] for row in lwf.rows("cost-table")] == ["not checked", "not checked"]
    assert lwf.rows("cost-table")[0][3:] == ["—", "—", "—", "—"]
