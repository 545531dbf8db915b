"""Run-folder writers: metrics.jsonl (one JSON object per log call) and summary.json.

Both stay valid when the disk fills up: summary.json is replaced atomically, and a metrics line
that cannot be written whole is cut off again, so ``resume`` can read the file back. The failure
is an ``OutputError`` naming the file.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

from foodmtl.utils.output import OutputError, atomic_write


def jsonable(value: Any) -> Any:
    """Floats stay floats; NaN/Inf become None so every line is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_line(record: dict[str, Any]) -> bytes:
    return (json.dumps({k: jsonable(v) for k, v in record.items()}) + "\n").encode()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps({k: jsonable(v) for k, v in data.items()}, indent=2, sort_keys=True)
    atomic_write(path, lambda f: f.write(text.encode()))


def write_jsonl_atomic(path: Path, records: list[dict[str, Any]]) -> None:
    atomic_write(path, lambda f: f.writelines(json_line(r) for r in records))


class JsonlWriter:
    """Appends through an unbuffered file, so nothing is left in a buffer to fail again at close."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.file = open(path, "ab", buffering=0)
        except OSError as exc:
            raise OutputError(path, exc) from None

    def log(self, record: dict[str, Any]) -> None:
        line = memoryview(json_line(record))
        end = self.file.seek(0, os.SEEK_END)
        try:
            while line:  # a raw write may take only part of the line (the last bytes before a limit)
                line = line[self.file.write(line):]
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.file.truncate(end)
            raise OutputError(self.path, exc) from None

    def close(self) -> None:
        self.file.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
