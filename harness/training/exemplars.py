"""Exemplar memory owned by the harness, so the suite's budget is enforced, not trusted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from harness.data.stream import Split


class ExemplarBudgetError(RuntimeError):
    """A strategy tried to keep more exemplars than the suite allows."""


class ExemplarMemory:
    """Stored training images per class, at most ``budget`` in total (``None``: unbounded).

    Only reference strategies (e.g. joint training, the upper bound) get an unbounded memory.
    """

    def __init__(self, budget: int | None) -> None:
        if budget is not None and budget < 0:
            raise ValueError("the exemplar budget must be >= 0")
        self.budget = budget
        self._per_class: dict[int, torch.Tensor] = {}
        # Per-sample extras a strategy keeps beside its exemplars (e.g. DER++'s logits), one
        # row per stored sample of the class: cut and counted with them.
        self._extras: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return sum(len(x) for x in self._per_class.values())

    @property
    def nbytes(self) -> int:
        """Bytes of the stored samples and their extras, in the dtypes they are stored in
        (their labels are the class keys, stored once per class)."""
        extras = [t for per_class in self._extras.values() for t in per_class.values()]
        return sum(t.numel() * t.element_size() for t in [*self._per_class.values(), *extras])

    @property
    def classes(self) -> list[int]:
        return sorted(self._per_class)

    def quota_per_class(self, num_classes: int) -> int:
        """The fixed-budget share of each of ``num_classes`` classes (as in iCaRL: budget // n)."""
        if self.budget is None:
            raise ValueError("an unbounded memory has no per-class quota")
        return self.budget // max(num_classes, 1)

    def make_room(self, num_seen_classes: int, *, new_classes: Iterable[int], method: str) -> int:
        """The fixed-budget update's first step (iCaRL's Alg. 5): cut the classes other than
        ``new_classes`` to ``budget // num_seen_classes`` each; returns that quota, refusing a
        budget too small to keep one exemplar per class (``method`` names who needs it)."""
        quota = self.quota_per_class(num_seen_classes)
        if quota < 1:
            raise ValueError(
                f"{method} needs at least one exemplar per class, but the budget of "
                f"{self.budget} spread over {num_seen_classes} classes gives {quota}: raise "
                "the suite's exemplar_budget"
            )
        self.shrink_to(quota, keep=new_classes)
        return quota

    def store(
        self, label: int, x: torch.Tensor, *, extras: Mapping[str, torch.Tensor] | None = None
    ) -> None:
        """Keep ``x`` as the exemplars of class ``label`` (replacing any kept before), with
        ``extras``: named per-sample tensors, one row per sample of ``x``."""
        new_total = len(self) - len(self._per_class.get(label, ())) + len(x)
        if self.budget is not None and new_total > self.budget:
            raise ExemplarBudgetError(
                f"storing {len(x)} exemplars of class {label} would hold {new_total}, "
                f"over the suite's budget of {self.budget}"
            )
        for name, extra in (extras or {}).items():
            if len(extra) != len(x):
                raise ValueError(
                    f"extra {name!r} of class {label} has {len(extra)} rows for {len(x)} samples"
                )
        self._per_class[label] = x.detach().clone()
        self._extras[label] = {name: t.detach().clone() for name, t in (extras or {}).items()}

    def get(self, label: int) -> torch.Tensor:
        return self._per_class[label]

    def get_extra(self, label: int, name: str) -> torch.Tensor:
        """The extra ``name`` stored with class ``label``'s exemplars, row for row."""
        extras = self._extras.get(label, {})
        if name not in extras:
            raise KeyError(f"class {label}'s exemplars were stored without the extra {name!r}")
        return extras[name]

    def shrink_to(self, quota: int, *, keep: Iterable[int] = ()) -> None:
        """Cut every class except ``keep`` to its first ``quota`` exemplars.

        Strategies store each class's exemplars in priority order (herding or random), so the
        head of a set is the set a smaller quota would have chosen; shrinking first frees the
        slots new classes need.
        """
        kept = set(keep)
        for label in self.classes:
            if label not in kept and len(self._per_class[label]) > quota:
                self._per_class[label] = self._per_class[label][:quota]
                extras = self._extras.get(label, {})
                self._extras[label] = {name: t[:quota] for name, t in extras.items()}

    def as_split(self, classes: Iterable[int] | None = None) -> Split | None:
        """The stored exemplars (of ``classes`` only, if given) as one split; None if empty."""
        labels = self.classes if classes is None else [c for c in self.classes if c in set(classes)]
        if not labels:
            return None
        xs = [self._per_class[c] for c in labels]
        ys = [torch.full((len(x),), c, dtype=torch.int64, device=x.device)
              for c, x in zip(labels, xs, strict=True)]  # fmt: skip
        return Split(torch.cat(xs), torch.cat(ys))
