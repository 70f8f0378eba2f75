"""Exemplar memory owned by the harness, so the suite's budget is enforced, not trusted."""

from __future__ import annotations

from collections.abc import Iterable

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

    def __len__(self) -> int:
        return sum(len(x) for x in self._per_class.values())

    @property
    def nbytes(self) -> int:
        """Bytes of the stored samples, in the dtype they are stored in (their labels are the
        class keys, stored once per class)."""
        return sum(x.numel() * x.element_size() for x in self._per_class.values())

    @property
    def classes(self) -> list[int]:
        return sorted(self._per_class)

    def quota_per_class(self, num_classes: int) -> int:
        """The fixed-budget share of each of ``num_classes`` classes (as in iCaRL: budget // n)."""
        if self.budget is None:
            raise ValueError("an unbounded memory has no per-class quota")
        return self.budget // max(num_classes, 1)

    def store(self, label: int, x: torch.Tensor) -> None:
        """Keep ``x`` as the exemplars of class ``label`` (replacing any kept before)."""
        new_total = len(self) - len(self._per_class.get(label, ())) + len(x)
        if self.budget is not None and new_total > self.budget:
            raise ExemplarBudgetError(
                f"storing {len(x)} exemplars of class {label} would hold {new_total}, "
                f"over the suite's budget of {self.budget}"
            )
        self._per_class[label] = x.detach().clone()

    def get(self, label: int) -> torch.Tensor:
        return self._per_class[label]

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

    def as_split(self, classes: Iterable[int] | None = None) -> Split | None:
        """The stored exemplars (of ``classes`` only, if given) as one split; None if empty."""
        labels = self.classes if classes is None else [c for c in self.classes if c in set(classes)]
        if not labels:
            return None
        xs = [self._per_class[c] for c in labels]
        ys = [torch.full((len(x),), c, dtype=torch.int64, device=x.device)
              for c, x in zip(labels, xs, strict=True)]  # fmt: skip
        return Split(torch.cat(xs), torch.cat(ys))
