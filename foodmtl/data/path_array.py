"""A pandas column of paths that share a folder: ``prefix + key + suffix``, the keys in one buffer.

A million Python ``str`` paths cost ~105 MiB (an object of ~110 bytes each); the keys of Food2K's
lists (``<class>/<file>``) are ~15 bytes each. ``PathArray`` is a pandas ExtensionArray
(https://pandas.pydata.org/docs/development/extending.html), so ``frame["image"]`` still yields
each path as a ``str`` (``None`` where absent) and every pandas operation works; filters, takes
and concatenations share the key buffer, and FoodDataset keeps the array itself as its path column
(flat buffers, fork-friendly like ``foodmtl.data.columns``), so no million ``str`` ever exists.
A few ``(prefix, suffix)`` affixes are shared by all rows: a row's code picks one (-1: absent).
An all-absent column (``PathArray.absent``: a data set without masks) keeps constant (zero-stride)
spans through every filter: one byte a row where a column of ``None`` costs eight.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from pandas.api.extensions import ExtensionArray, ExtensionDtype, take
from pandas.api.indexers import check_array_indexer

Affixes = tuple[tuple[str, str], ...]


class PathDtype(ExtensionDtype):
    name = "path"
    type = str
    kind = "O"
    na_value = None  # what the table's contract says an unlabelled path reads

    @classmethod
    def construct_array_type(cls) -> type["PathArray"]:
        return PathArray


class PathArray(ExtensionArray):
    """Row ``i``: ``prefix + keys[starts[i]:ends[i]].decode() + suffix``, ``affixes[codes[i]]``."""

    CHUNK = 65536
    dtype = PathDtype()

    def __init__(self, keys: bytes, starts: np.ndarray, ends: np.ndarray, codes: np.ndarray, affixes: Affixes):
        self.keys, self.starts, self.ends, self.codes, self.affixes = keys, starts, ends, codes, affixes

    @classmethod
    def absent(cls, rows: int) -> "PathArray":
        """``rows`` times ``None``."""
        nowhere = np.broadcast_to(np.int64(0), rows)
        return cls(b"", nowhere, nowhere, np.full(rows, -1, np.int8), ())

    @classmethod
    def _from_sequence(cls, scalars, *, dtype=None, copy=False) -> "PathArray":
        values = [v if isinstance(v, str) else None for v in scalars]
        encoded = [v.encode() if v is not None else b"" for v in values]
        ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        codes = np.array([-1 if v is None else 0 for v in values], np.int8)
        return cls(b"".join(encoded), ends - [len(e) for e in encoded], ends, codes, (("", ""),))

    @classmethod
    def _from_factorized(cls, values, original) -> "PathArray":
        return cls._from_sequence(values)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, item):
        if np.ndim(item) == 0 and not isinstance(item, slice):
            return self.value(int(item))
        item = check_array_indexer(self, item)
        return self.rows(lambda values: values[item])

    def rows(self, select) -> "PathArray":
        """The rows ``select`` picks from each array; constant spans (all absent) stay constant."""
        codes = select(self.codes)
        if self.starts.strides == (0,):
            return PathArray(self.keys, *(np.broadcast_to(a[:1], codes.shape) for a in (self.starts, self.ends)),
                             codes, self.affixes)
        return PathArray(self.keys, select(self.starts), select(self.ends), codes, self.affixes)

    def value(self, i: int) -> str | None:
        code = self.codes[i]
        if code < 0:
            return None
        prefix, suffix = self.affixes[code]
        return prefix + self.keys[self.starts[i]:self.ends[i]].decode() + suffix

    def __iter__(self) -> Iterator[str | None]:
        for start in range(0, len(self), self.CHUNK):  # chunks: no million-long lists of ints
            stop = start + self.CHUNK
            for code, s, e in zip(*(a[start:stop].tolist() for a in (self.codes, self.starts, self.ends))):
                yield None if code < 0 else self.affixes[code][0] + self.keys[s:e].decode() + self.affixes[code][1]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.empty(len(self), object)
        out[:] = list(self)
        return out if dtype in (None, object) else out.astype(dtype)

    def __eq__(self, other) -> np.ndarray:
        return np.asarray(self) == (np.asarray(other, object) if isinstance(other, ExtensionArray) else other)

    @property
    def nbytes(self) -> int:
        spans = 0 if self.starts.strides == (0,) else self.starts.nbytes + self.ends.nbytes
        return len(self.keys) + spans + self.codes.nbytes

    def isna(self) -> np.ndarray:
        return self.codes < 0

    def take(self, indices: Sequence[int], allow_fill: bool = False, fill_value=None) -> "PathArray":
        if fill_value is not None:
            raise ValueError(f"a PathArray fills with None only, not {fill_value!r}")
        return self.rows(lambda values: take(values, indices, allow_fill=allow_fill, fill_value=-1))

    def copy(self) -> "PathArray":
        return self.rows(np.copy)

    @classmethod
    def _concat_same_type(cls, to_concat: Sequence["PathArray"]) -> "PathArray":
        affixes = tuple(dict.fromkeys(a for part in to_concat for a in part.affixes))
        # each part's codes renumbered into the merged affixes; the appended -1 keeps absent absent
        codes = np.concatenate([np.array([affixes.index(a) for a in part.affixes] + [-1], np.int8)[part.codes]
                                for part in to_concat])
        if not affixes:  # all absent
            return cls.absent(len(codes))
        shifts = np.cumsum([0] + [len(part.keys) for part in to_concat[:-1]])
        return cls(b"".join(part.keys for part in to_concat),
                   np.concatenate([part.starts + shift for part, shift in zip(to_concat, shifts)]),
                   np.concatenate([part.ends + shift for part, shift in zip(to_concat, shifts)]), codes, affixes)
