"""``summary.csv``: one row per epoch in timm's layout, beside metrics.jsonl.

The columns are timm's ``update_summary`` ones (``timm/utils/summary.py``): ``epoch`` (0-based),
``train_<name>`` (``train_loss``: mean of the epoch's optimizer steps, ``train_images_per_s``),
``eval_<name>`` (``eval_loss``, ``eval_loss/<task>``, ``eval_<task>/<metric>``), ``lr``, so
scripts written for timm's file read this one. timm's function is not called because it appends
to the open file: a full disk leaves a half row, and its ``trim_summary`` rewrites in place. Here
the whole file is rewritten through ``atomic_write`` at each epoch (a few hundred rows at most),
so it is always whole, a failed write is an ``OutputError`` naming it, and the header is the
union of every row's columns. A resumed run first drops the rows of the epochs its checkpoint had
not finished, so a killed and resumed run holds every epoch once.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from foodmtl.utils.output import atomic_write


def epoch_row(epoch: int, train: dict[str, float], evals: dict[str, float], lr: float | None) -> dict[str, Any]:
    """One row as timm's ``update_summary`` builds it."""
    row: dict[str, Any] = {"epoch": epoch}
    row.update((f"train_{k}", v) for k, v in train.items())
    row.update((f"eval_{k}", v) for k, v in evals.items())
    if lr is not None:
        row["lr"] = lr
    return row


class SummaryCsv:
    """``resume_epoch``: a run resumed in its own folder keeps the rows of earlier epochs only."""

    def __init__(self, path: Path, resume_epoch: int | None = None):
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if resume_epoch is not None and path.is_file():
            self.rows = [r for r in read_summary(path) if int(r["epoch"]) < resume_epoch]
            self._write()

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in self.rows)
        atomic_write(self.path, lambda f: f.write(text.getvalue().encode()))


def _cell(value: Any) -> Any:
    """NaN (e.g. no optimizer step ran in the epoch) as an empty cell, as a missing column is."""
    return "" if isinstance(value, float) and not math.isfinite(value) else value


def read_summary(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
