"""Protocol choices on which reference implementations differ (issue 23): the cross-entropy's
scope, checked where it matters, on the tiny suite's own data."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from harness.api.adapters import STRATEGIES, load_adapters
from harness.api.config import ConfigError, config_to_dict, resolve_config
from harness.api.testing import tiny_suite
from harness.data.suite_stream import stream_for_suite
from harness.models.backbones import create_backbone
from harness.models.incremental_net import IncrementalNet
from harness.run.trial import run_trial
from harness.training.cross_entropy import scoped_cross_entropy
from harness.training.exemplars import ExemplarMemory
from methods.strategies.icarl import paper_loss
from tests.contract_trials import tiny_spec

load_adapters()


def _second_task_gradients(strategy_name: str, scope: str) -> torch.Tensor:
    """The head's weight gradient of the strategy's loss on a batch of the tiny suite's second
    task (no previous model, so only the cross-entropy term acts)."""
    torch.manual_seed(0)
    suite = tiny_suite()
    task = stream_for_suite(suite).tasks[1]
    built = create_backbone("compact_cnn", in_channels=suite.input_shape[0],
                            input_size=suite.input_shape[1])  # fmt: skip
    model = IncrementalNet(built.module, built.feature_dim)
    model.add_classes(len(task.classes) + task.num_old_classes)
    cls = STRATEGIES.get(strategy_name)
    config = resolve_config(cls.Config, {"ce_scope": scope}, scope="strategy")
    strategy = cls(config, memory=ExemplarMemory(0))
    loss = strategy.loss(model, task.train.x[:16].float() / 255, task.train.y[:16], task)
    loss.backward()
    return model.head.fc.weight.grad


@pytest.mark.parametrize("strategy", ["finetune", "lwf"])
def test_new_class_cross_entropy_leaves_old_class_logits_without_gradient(strategy) -> None:
    old = tiny_suite().classes_per_task[0]
    new_only = _second_task_gradients(strategy, "new")
    assert torch.count_nonzero(new_only[:old]) == 0  # PyCIL's: old logits untouched
    assert torch.count_nonzero(new_only[old:]) > 0
    seen = _second_task_gradients(strategy, "seen")
    assert torch.count_nonzero(seen[:old]) > 0  # FACIL's and Mammoth's: pushed down


def test_the_scope_is_a_declared_choice_and_new_refuses_replayed_labels() -> None:
    with pytest.raises(ConfigError, match="strategy.ce_scope='old' is not allowed: it must "
                                          "be one of seen, new"):  # fmt: skip
        resolve_config(STRATEGIES.get("lwf").Config, {"ce_scope": "old"}, scope="strategy")
    logits, y = torch.zeros(2, 4), torch.tensor([0, 3])  # label 0: an old class
    with pytest.raises(ValueError, match="new-class labels only"):
        scoped_cross_entropy(logits, y, num_old_classes=2, scope="new")
    # On the first task the scopes agree.
    first = torch.tensor([0, 1])
    assert scoped_cross_entropy(logits[:, :2], first, num_old_classes=0, scope="new") == (
        scoped_cross_entropy(logits[:, :2], first, num_old_classes=0, scope="seen")
    )


def test_icarl_serves_its_nearest_mean_classifier_or_its_logits_as_declared() -> None:
    from methods.strategies.icarl import ICaRL, NearestMeanClassifier

    cls = STRATEGIES.get("icarl")
    model = IncrementalNet(torch.nn.Flatten(), 4)
    model.add_classes(2)
    logits = ICaRL(resolve_config(cls.Config, {"classifier": "logits"}, scope="strategy"),
                   memory=ExemplarMemory(4))  # fmt: skip
    assert logits.predictor(model) is model  # PyCIL's CNN accuracy: the head serves
    memory = ExemplarMemory(4)
    for label in (0, 1):
        memory.store(label, torch.rand(2, 1, 2, 2))
    nme = ICaRL(resolve_config(cls.Config, {}, scope="strategy"), memory=memory)
    assert isinstance(nme.predictor(model), NearestMeanClassifier)  # the paper's default


def test_icarl_paper_loss_is_one_sigmoid_bce_over_seen_classes() -> None:
    """``loss: bce`` is Mammoth's ``get_loss``: one-hot targets on the new classes, the old
    model's sigmoid outputs on the old ones, one mean over batch and classes."""
    torch.manual_seed(0)
    logits, y = torch.randn(4, 5), torch.tensor([3, 4, 1, 3])
    old_probs = torch.rand(4, 2)
    targets = torch.nn.functional.one_hot(y, 5).float()
    targets[:, :2] = old_probs
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    assert torch.allclose(paper_loss(logits, y, old_probs, old_weight=1.0), expected)
    # Weighting the old classes' terms changes exactly those terms.
    assert not torch.allclose(paper_loss(logits, y, old_probs, old_weight=3.0), expected)
    plain = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.nn.functional.one_hot(y, 5).float()
    )
    assert torch.allclose(paper_loss(logits, y, None, old_weight=3.0), plain)


def test_icarl_loss_is_a_declared_choice_and_bce_trains() -> None:
    cls = STRATEGIES.get("icarl")
    with pytest.raises(ConfigError, match="strategy.loss='mse' is not allowed"):
        resolve_config(cls.Config, {"loss": "mse"}, scope="strategy")
    spec = replace(tiny_spec("icarl", "none"), overrides={"strategy": {"loss": "bce"}})
    record = run_trial(spec)
    assert record["method"]["config"]["strategy"]["loss"] == "bce"
    assert record["status"] == "ok"
    assert len(record["results"]["acc_matrix_pct"]) == len(tiny_suite().classes_per_task)


def test_postpruning_new_class_scope_trains_lwf_and_refuses_a_replaying_strategy() -> None:
    overrides = {"strategy": {"ce_scope": "new"}, "framework": {"ce_scope": "new"}}
    spec = replace(tiny_spec("lwf", "postpruning"), overrides=overrides)
    record = run_trial(spec)
    assert record["method"]["config"]["framework"]["ce_scope"] == "new"
    replaying = replace(tiny_spec("icarl", "postpruning"),
                        overrides={"framework": {"ce_scope": "new"}})  # fmt: skip
    failed = run_trial(replaying)  # a trial's error is recorded, not raised
    assert failed["status"] == "failed"
    assert "set framework.ce_scope=seen" in str(failed["error"])


def test_a_choice_added_after_records_is_left_out_of_configs_at_its_default() -> None:
    """Earlier records keep their run ids: ``loss`` (added to iCaRL by issue 23) is not in a
    default config, and is written once set; a choice declared from the start always is."""
    cls = STRATEGIES.get("icarl")
    default = config_to_dict(resolve_config(cls.Config, {}, scope="strategy"))
    assert "loss" not in default and default["classifier"] == "nme"
    paper = config_to_dict(resolve_config(cls.Config, {"loss": "bce"}, scope="strategy"))
    assert paper == {**default, "loss": "bce"}
