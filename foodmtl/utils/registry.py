"""A name -> factory registry: names as people type them (any case, known aliases), close names on a miss."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterable, Mapping, TypeVar

from foodmtl.errors import UnknownNameError

T = TypeVar("T")


def unknown_name_error(kind: str, name: str, valid: Iterable[str]) -> UnknownNameError:
    """An UnknownNameError naming ``name`` and listing the closest valid names (compared case-insensitively)."""
    by_lower = {v.lower(): v for v in sorted(valid)}
    close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.5)]
    hint = f"did you mean: {', '.join(close)}?" if close else f"valid: {', '.join(list(by_lower.values())[:30])}"
    return UnknownNameError(f"unknown {kind} '{name}'; {hint}")


def resolve_name(kind: str, name: str, names: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """The registered spelling of ``name``: itself, its case-insensitive match, or what its alias
    (also case-insensitive) stands for. Kept apart from Registry so a config can be checked against
    a light list of names before the registry's heavy modules are imported."""
    names = list(names)
    aliases = aliases or {}
    lower = {n.lower(): n for n in names} | {a.lower(): target for a, target in aliases.items()}
    if name in names:
        return name
    if name.lower() in lower:
        return lower[name.lower()]
    raise unknown_name_error(kind, name, [*names, *aliases])


class Registry(Generic[T]):
    """Maps names to factories; ``get`` accepts any case and the registry's aliases."""

    def __init__(self, kind: str, aliases: Mapping[str, str] | None = None):
        self.kind = kind
        self.aliases = dict(aliases or {})
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name.lower() in {n.lower() for n in self._items}:
                raise ValueError(f"{self.kind} '{name}' registered twice (names are case-insensitive)")
            self._items[name] = item
            return item

        return add

    def canonical(self, name: str) -> str:
        """The registered name ``name`` stands for; UnknownNameError with close names on a miss."""
        return resolve_name(self.kind, name, self._items, self.aliases)

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        try:
            self.canonical(name)
        except UnknownNameError:
            return False
        return True
