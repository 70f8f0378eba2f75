"""Name -> factory registries with decorator registration and "did you mean" errors.

One ``Registry`` per kind of pluggable thing (strategies, frameworks, backbones, datasets).
In-tree adapters register on import of their module; ``discover`` imports every module of a
package and every module named by a Python entry-point group, so nothing keeps a central list.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that no registry entry matches; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def did_you_mean(name: str, valid: list[str]) -> str:
    """Return ' Did you mean "x"?' for the closest valid name, or an empty string."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    return f' Did you mean "{close[0]}"?' if close else ""


class Registry(Generic[T]):
    """Names of one kind of pluggable thing. ``base``: what every entry must subclass (a
    registered class that does not is refused at once, naming the base)."""

    def __init__(self, kind: str, *, plural: str | None = None, base: type | None = None) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.base = base
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@STRATEGIES.register("lwf")`` on a class or factory function."""

        def decorate(obj: T) -> T:
            if self.base is not None and not (isinstance(obj, type) and issubclass(obj, self.base)):
                raise TypeError(
                    f"{self.kind} {name!r}: {obj!r} must be a subclass of "
                    f"{self.base.__module__}.{self.base.__qualname__}"
                )
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorate

    def get(self, name: str) -> T:
        if name not in self._entries:
            valid = self.names()
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{did_you_mean(name, valid)} "
                f"Valid {self.plural}: {', '.join(valid) or '(none registered)'}."
            )
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def discover(package: str, *, entry_point_groups: tuple[str, ...] = ()) -> None:
    """Import every module under ``package`` and every entry point of the groups: importing
    is what registers them."""
    root = importlib.import_module(package)
    for module in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        importlib.import_module(module.name)
    for group in entry_point_groups:
        for entry_point in entry_points(group=group):
            entry_point.load()
