"""The one error a reader raises for bad data: the file, the line (when there is one), what is wrong.

``str(DataError(path, "duplicate image id 12", line=7))`` reads
``<path>, line 7: duplicate image id 12``; the CLI prints it after ``error: `` and exits 2, and
``data_prep/verify.py`` prints the same text.
"""
from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A data file that cannot be used (bad list line, unknown class, malformed CSV/JSON, ...)."""

    def __init__(self, path: str | Path, what: str, line: int | None = None):
        self.path, self.what, self.line = str(path), what, line
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {what}")


class SampleError(ValueError):
    """One sample that cannot be used (e.g. a mask that does not fit its image); the message names
    the file. Like an unreadable image, it is skipped and counted, or fatal with ``data.strict``."""
