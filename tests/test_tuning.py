"""Tuning (issue 20): declared spaces, validation-only scoring with the test split out of reach,
the suite's equal budget, tuned configs with provenance, and tuned twins on the board."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from harness.api.adapters import FRAMEWORKS, STRATEGIES, load_adapters
from harness.api.config import ConfigError
from harness.api.search_space import check_search_space, choice, loguniform, randint, uniform
from harness.api.testing import TINY_SUITE_YAML, tiny_suite, write_tiny_suite
from harness.data.datasets import DatasetUnavailableError
from harness.data.stream import SealedSplit, TestDataAccessError
from harness.data.suite import SuiteError, parse_suite
from harness.data.suite_stream import stream_for_suite
from harness.data.suite_tuning import TuningBudget
from harness.records.provenance import code_version
from harness.run.grid import plan_trials
from harness.tuning import tune_method
from harness.tuning.search import SearchOutcome, TriedConfig
from harness.tuning.space import NothingToTuneError, method_space
from harness.tuning.tuned_configs import TunedConfigError, find_tuned
from harness.tuning.validation_trial import run_validation_trial, validation_stream
from tests.contract_trials import tiny_spec

load_adapters()


def test_every_declared_search_space_fits_its_config() -> None:
    for registry, scope in ((STRATEGIES, "strategy"), (FRAMEWORKS, "framework")):
        for name in registry.names():
            cls = registry.get(name)
            check_search_space(cls.search_space, cls.Config, scope=scope)
    assert set(method_space("lwf", "kd")) == {
        "strategy.lambda_kd", "strategy.temperature", "framework.lambda_kd",
        "framework.temperature",
    }  # fmt: skip


def test_a_space_that_could_sample_a_refused_value_is_refused_before_any_trial() -> None:
    config = STRATEGIES.get("lwf").Config
    with pytest.raises(ConfigError, match="can sample 0.0, which the config refuses"):
        check_search_space({"temperature": uniform(0.0, 2.0)}, config, scope="strategy")
    with pytest.raises(ConfigError, match="has no field 'lamda'"):
        check_search_space({"lamda": loguniform(1, 3)}, config, scope="strategy")
    with pytest.raises(ConfigError, match="not one of the field's choices"):
        check_search_space({"ce_scope": choice(["seen", "old"])}, config, scope="strategy")
    with pytest.raises(ValueError, match="0 < low"):
        loguniform(0, 1)
    assert randint(1, 4).extremes() == (1, 3)  # the upper bound is excluded, as in Ray
    with pytest.raises(NothingToTuneError, match="declares no search space"):
        method_space("finetune", "none")


def test_the_validation_stream_scores_validation_images_and_holds_no_test_split() -> None:
    stream = stream_for_suite(tiny_suite())
    tuning = validation_stream(stream)
    held_out = tuning.test.read()
    assert torch.equal(held_out.y, torch.cat([t.val.y for t in stream.tasks]))
    assert all(len(t.val) == 0 for t in tuning.tasks)  # the learner never sees them
    pairs = zip(tuning.tasks, stream.tasks, strict=True)
    assert all(torch.equal(a.train.y, b.train.y) for a, b in pairs)


def test_a_tuning_trial_never_reads_the_test_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream a tuning trial builds has its test split locked for good: any read raises.
    The trial still runs to the end, so nothing in it reads test data."""

    class Locked(SealedSplit):
        def read(self):  # noqa: ANN202
            raise TestDataAccessError("the test split was read during tuning")

    real = stream_for_suite

    def locked_stream(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        stream = real(*args, **kwargs)
        return replace(stream, test=Locked(stream.test.read()))

    monkeypatch.setattr("harness.run.trial.stream_for_suite", locked_stream)  # load_stream reads it
    seen = run_validation_trial(tiny_spec("lwf", "kd"))
    assert len(seen) == tiny_suite().num_tasks and all(0 <= a <= 100 for a in seen)


def test_a_suite_without_validation_data_cannot_be_tuned() -> None:
    suite = parse_suite(TINY_SUITE_YAML.replace("val_fraction: 0.1", "val_fraction: 0"))
    with pytest.raises(SuiteError, match="val_fraction > 0"):
        validation_stream(stream_for_suite(suite))


def test_the_budget_is_the_suites_and_is_checked() -> None:
    assert tiny_suite().tuning == TuningBudget()  # not declared: the default budget
    text = TINY_SUITE_YAML + "tuning: {samples: 3, grace_tasks: 1}\n"
    assert parse_suite(text).tuning == TuningBudget(samples=3, grace_tasks=1)
    # Not the protocol: changing the budget leaves every record's run id as it was.
    assert parse_suite(text).protocol_sha256 == tiny_suite().protocol_sha256
    with pytest.raises(SuiteError, match="grace_tasks=9 exceeds the suite's 3 tasks"):
        parse_suite(TINY_SUITE_YAML + "tuning: {grace_tasks: 9}\n")
    with pytest.raises(SuiteError, match="tuning.samples"):
        parse_suite(TINY_SUITE_YAML + "tuning: {samples: 0}\n")


@pytest.fixture
def suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "suites"
    folder.mkdir()
    write_tiny_suite(folder)
    monkeypatch.setenv("CILBENCH_SUITES", str(folder))
    return folder


def _fake_search(tried: list[tuple[float, float]]):  # noqa: ANN202
    """A stand-in for the Ray search: returns the given (lambda_kd, val accuracy) results."""

    def search(base, space, defaults, budget, *, num_tasks, seed, options):  # noqa: ANN001, ANN202
        configs = [TriedConfig({**defaults, "strategy.lambda_kd": lam}, [acc] * num_tasks)
                   for lam, acc in tried]  # fmt: skip
        best = max(configs, key=lambda t: t.val_aia_pct)
        search.calls.append({"budget": budget, "seed": seed, "space": sorted(space)})
        return SearchOutcome(tried=configs, num_tasks=num_tasks, best=best)

    search.calls = []
    return search


def test_the_winner_is_written_with_its_provenance_and_run_adds_a_tuned_twin(
    suites: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = _fake_search([(1.0, 50.0), (3.0, 70.0), (0.3, 40.0)])
    monkeypatch.setattr(tune_method, "search", fake)
    request = tune_method.TuneRequest(suite="tiny-3split", method="lwf", seed=7)
    _, path = tune_method.tune(request, options=None)
    content = json.loads(path.read_text())
    assert path == suites / "tuned" / "tiny-3split" / "compact_cnn" / "lwf.json"
    assert content["overrides"] == {"strategy": {"lambda_kd": 3.0, "temperature": 2.0}}
    assert content["search"]["budget"] == TuningBudget().to_dict()  # the suite's, not a flag's
    assert content["search"]["split"] == "validation" and content["search"]["seed"] == 7
    assert content["search"]["space"]["strategy.lambda_kd"]["kind"] == "loguniform"
    assert content["result"] == {"val_aia_pct": 70.0, "default_val_aia_pct": 50.0,
                                 "default_tasks_learned": 3}  # fmt: skip
    assert {"git_commit", "created_utc"} <= set(content["provenance"])
    assert fake.calls[0]["budget"] == TuningBudget() and fake.calls[0]["seed"] == 7

    plan = plan_trials(suite="tiny-3split", methods=["lwf"], seeds=[1],
                       results_dir=tmp_path / "results")  # fmt: skip
    untuned, tuned = plan.specs
    assert untuned.tuned is None and untuned.overrides == {}
    assert tuned.label == "lwf" and tuned.overrides["strategy"]["lambda_kd"] == 3.0
    assert tuned.tuned["file"] == "tuned/tiny-3split/compact_cnn/lwf.json"
    assert tuned.tuned["tuning_suite"] == "tiny-3split"
    assert len(plan.run_ids) == 2
    assert len(plan_trials(suite="tiny-3split", methods=["lwf"], seeds=[1], tuned=False,
                           results_dir=tmp_path / "results").specs) == 1  # fmt: skip


def test_every_method_gets_the_same_budget_and_other_budgets_are_refused(
    suites: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake_search([(1.0, 50.0)])
    monkeypatch.setattr(tune_method, "search", fake)
    for method in ("lwf", "lwf+kd"):
        tune_method.tune(tune_method.TuneRequest(suite="tiny-3split", method=method), None)
    assert fake.calls[0]["budget"] == fake.calls[1]["budget"] == TuningBudget()
    # A smaller budget explores, but cannot write a tuned config.
    with pytest.raises(ConfigError, match="--samples is for exploring, with --no-write"):
        tune_method.tune(tune_method.TuneRequest(suite="tiny-3split", method="lwf", samples=2),
                         None)  # fmt: skip
    # The suite's budget changes: configs tuned under the old one are refused by run.
    suite_file = suites / "tiny-3split.yaml"
    suite_file.write_text(suite_file.read_text() + "tuning: {samples: 16}\n")
    with pytest.raises(TunedConfigError, match="tuned under the budget"):
        find_tuned(parse_suite(suite_file.read_text()), "lwf", "compact_cnn")


def test_two_protocols_tune_on_one_suite_and_rank_on_another(
    suites: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = TINY_SUITE_YAML.replace("name: tiny-3split", "name: tiny-other").replace(
        "split_seed: 0", "split_seed: 5"
    )
    (suites / "tiny-other.yaml").write_text(other)
    monkeypatch.setattr(tune_method, "search", _fake_search([(2.0, 60.0)]))
    request = tune_method.TuneRequest(suite="tiny-3split", method="lwf", tuning_suite="tiny-other")
    _, path = tune_method.tune(request, None)
    content = json.loads(path.read_text())
    assert content["suite"]["name"] == "tiny-3split"
    assert content["tuning_suite"]["name"] == "tiny-other"
    found = find_tuned(parse_suite((suites / "tiny-3split.yaml").read_text()), "lwf", "compact_cnn")
    assert found is not None and found.reference()["tuning_suite"] == "tiny-other"


def test_a_tuned_config_just_written_does_not_make_the_next_search_dirty(tmp_path: Path) -> None:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "code")
    (tmp_path / "suites" / "tuned").mkdir(parents=True)
    (tmp_path / "suites" / "tuned" / "lwf.json").write_text("{}\n")
    assert code_version(tmp_path)["git_dirty"] is True  # for a run, it changes what runs
    assert code_version(tmp_path, also_outputs=("suites/tuned",))["git_dirty"] is False


def test_missing_data_fails_before_any_configuration_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def never(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the search started without the data")

    monkeypatch.setattr(tune_method, "search", never)
    request = tune_method.TuneRequest(suite="cifar100-10split", method="lwf",
                                      backbone="resnet34_cifar", data_root=tmp_path / "empty",
                                      write=False)  # fmt: skip
    with pytest.raises(DatasetUnavailableError, match="cifar"):
        tune_method.tune(request, None)


def test_a_tuned_twin_keeps_its_entrys_own_training_overrides(
    suites: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    suite_file = suites / "tiny-3split.yaml"
    suite_file.write_text(suite_file.read_text().replace(
        "  - strategy: lwf\n", "  - {strategy: lwf, config: {training: {epochs: 2}}}\n"
    ))  # fmt: skip
    monkeypatch.setattr(tune_method, "search", _fake_search([(1.0, 50.0), (3.0, 70.0)]))
    tune_method.tune(tune_method.TuneRequest(suite="tiny-3split", method="lwf"), None)
    plan = plan_trials(suite="tiny-3split", methods=["lwf"], seeds=[1],
                       results_dir=tmp_path / "results")  # fmt: skip
    untuned, tuned = plan.specs
    assert untuned.overrides["training"] == tuned.overrides["training"] == {"epochs": 2}
    assert tuned.overrides["strategy"]["lambda_kd"] == 3.0
