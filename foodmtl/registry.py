"""A name -> factory registry whose lookups suggest close names on a miss."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not registered; the message lists the closest valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


def unknown_name_error(kind: str, name: str, valid: Iterable[str]) -> UnknownNameError:
    """An UnknownNameError naming ``name`` and listing the closest valid names."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
    hint = f"did you mean: {', '.join(close)}?" if close else f"valid: {', '.join(valid[:30])}"
    return UnknownNameError(f"unknown {kind} '{name}'; {hint}")


class Registry(Generic[T]):
    """Maps names to factories; ``get`` raises a helpful KeyError on a miss."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        if name not in self._items:
            raise unknown_name_error(self.kind, name, self._items)
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
