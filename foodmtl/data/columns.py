"""Compact, fork-friendly label and path columns for a data set of any size.

A Python list of a million strings is a million objects whose reference counts change whenever
a DataLoader worker reads one, so copy-on-write duplicates the whole index in every worker.
These columns hold their values in a few flat numpy buffers instead: workers share the pages,
and ``column[i]`` builds the one value asked for (``None`` where the sample has no label).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


class StringColumn:
    """UTF-8 strings in one byte buffer plus offsets; ``None`` entries are kept as absent.

    Encoded ``CHUNK`` strings at a time into the final buffer: a list of a million encoded
    ``bytes`` (about 90 MiB of Food2K's paths at their peak) never exists."""

    CHUNK = 65536

    def __init__(self, values: Iterable[str | None]):
        values = list(values)
        self.present = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
        lengths = np.fromiter((0 if not isinstance(v, str) else len(v) if v.isascii() else len(v.encode())
                               for v in values), np.int64, len(values))
        self.offsets = np.zeros(len(values) + 1, np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        self.buffer = np.empty(int(self.offsets[-1]), np.uint8)
        for start in range(0, len(values), self.CHUNK):
            chunk = "".join(v for v in values[start:start + self.CHUNK] if isinstance(v, str)).encode()
            self.buffer[self.offsets[start]:self.offsets[start] + len(chunk)] = np.frombuffer(chunk, np.uint8)

    def __len__(self) -> int:
        return len(self.present)

    def __getitem__(self, i: int) -> str | None:
        if not self.present[i]:
            return None
        return self.buffer[self.offsets[i]:self.offsets[i + 1]].tobytes().decode()

    def tolist(self) -> list[str | None]:
        return [self[i] for i in range(len(self))]


class IndexColumn:
    """One class index per sample, -1 where unlabelled."""

    def __init__(self, values: Sequence[int | None]):
        self.values = np.fromiter((-1 if v is None else v for v in values), np.int32, len(values))

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int) -> int | None:
        value = int(self.values[i])
        return None if value < 0 else value


class FloatColumn:
    """One number per sample, NaN where unlabelled."""

    def __init__(self, values: Sequence[float | None]):
        self.values = np.fromiter((np.nan if v is None else v for v in values), np.float64, len(values))

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int) -> float | None:
        value = float(self.values[i])
        return None if np.isnan(value) else value

    def labelled(self) -> np.ndarray:
        return self.values[~np.isnan(self.values)]


class RaggedColumn:
    """A list of class indices per sample (CSR: flat indices + offsets), ``None`` where unlabelled."""

    def __init__(self, values: Sequence[Sequence[int] | None]):
        self.present = np.fromiter((v is not None for v in values), bool, len(values))
        lengths = np.fromiter((0 if v is None else len(v) for v in values), np.int64, len(values))
        self.offsets = np.zeros(len(values) + 1, np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        self.indices = np.fromiter((i for v in values if v is not None for i in v), np.int32,
                                   int(self.offsets[-1]))

    def __len__(self) -> int:
        return len(self.present)

    def __getitem__(self, i: int) -> list[int] | None:
        if not self.present[i]:
            return None
        return self.indices[self.offsets[i]:self.offsets[i + 1]].tolist()
