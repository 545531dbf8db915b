"""The sample table: one row per image, whatever the source layout.

Every reader (Food-101, FoodX-251, FoodSeg103, COCO, SynthFood) yields a pandas
frame with these columns, so one Dataset class serves them all:

=============  ==========================================================
``image``      absolute path of the image file
``split``      ``train`` / ``val`` / ``test``
``source``     name of the data set the row came from
``dish``       dish class name, or NA when unlabelled (FoodX-251 test)
``category``   coarse category name, or NA
``cuisine``    cuisine name, or NA
``ingredients`` tuple of ingredient names, or None when unlabelled
``mask``       path of a PNG of per-pixel class ids, or None
``instances``  ``<COCO instance json>#<image id>``, or None (``coco_instances.py``)
``mass`` ...   per-image numbers (``mass``, ``calories``, ``fat``, ``carb``,
               ``protein``; NaN when unlabelled), in the units the data set's
               vocabulary names (``vocab["mass"] == ["g"]``)
=============  ==========================================================

``foodmtl.tasks.KNOWN_TASKS`` says which column each task reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from foodmtl.config.tasks import KNOWN_TASKS
from foodmtl.data.path_array import PathArray
from foodmtl.errors import ConfigError

COLUMNS = ("image", "split", "source", *dict.fromkeys(t.column for t in KNOWN_TASKS.values()))
NA_COLUMNS = ("dish", "category", "cuisine", "mass", "calories", "fat", "carb", "protein")  # unlabelled: NA/NaN


def empty_columns(frame: pd.DataFrame, compact: bool = False) -> pd.DataFrame:
    """Add any missing schema column (all unlabelled) and order the columns; ``frame``'s own
    columns are not copied (a million-row frame's copy was the peak of its reader). ``compact``
    (a million-image data set): a missing column costs one byte a row instead of an eight-byte
    pointer: an all-NA categorical where the unlabelled value is NA or NaN, an all-absent
    ``PathArray`` where it is None."""
    missing = {column: (absent(len(frame)) if column in NA_COLUMNS else PathArray.absent(len(frame)))
               if compact else None for column in COLUMNS if column not in frame}
    return frame.assign(**missing)[list(COLUMNS)].reset_index(drop=True)


def absent(rows: int) -> pd.Categorical:
    """A column without a single label: NA (read as NaN) in every row."""
    return pd.Categorical.from_codes(np.full(rows, -1, np.int8), dtype=pd.CategoricalDtype([]))


@dataclass
class SampleTable:
    """Samples plus the class vocabulary of every task they can label, and what the reader
    noticed about the data on the way (quirks it handled; ``data_prep/verify.py`` prints them)."""

    frame: pd.DataFrame
    vocab: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> "SampleTable":
        return SampleTable(self.frame[self.frame["split"] == name].reset_index(drop=True), self.vocab, self.notes)

    def __len__(self) -> int:
        return len(self.frame)


def concat_tables(tables: list[SampleTable]) -> SampleTable:
    """One table of several parts of one data set (e.g. its splits): rows in order, vocabularies
    merged (``merge_vocab``), every part's notes."""
    splits = ["split " + "/".join(dict.fromkeys(t.frame["split"])) for t in tables]
    return SampleTable(pd.concat([t.frame for t in tables], ignore_index=True),
                       merge_vocab([t.vocab for t in tables], splits), [note for t in tables for note in t.notes])


def merge_vocab(vocabs: list[dict[str, list[str]]], parts: list[str] | None = None) -> dict[str, list[str]]:
    """Union of class names per task, in order of first appearance. A task whose label files store
    class ids (``TaskKind.ids_in_files``: masks, which ``from_masks`` also reads) must list the same
    classes in every part: ConfigError naming the two ``parts`` (e.g. the sources) and the ids whose
    classes differ."""
    from foodmtl.tasks import TASK_KINDS, get_kind

    parts = parts or [f"part {i}" for i in range(1, len(vocabs) + 1)]
    merged: dict[str, list[str]] = {}
    first: dict[str, str] = {}  # task -> the part its vocabulary came from first
    for vocab, part in zip(vocabs, parts):
        for task, names in vocab.items():
            if task in merged and merged[task] != names and get_kind(TASK_KINDS[task]).ids_in_files:
                raise ConfigError(f"{first[task]} and {part} disagree on the {task} classes, which their files "
                                  f"store as ids: {id_differences(merged[task], names)}; remap one's files to "
                                  "the other's classes (category_id.txt) first")
            first.setdefault(task, part)
            known = merged.setdefault(task, [])
            known.extend(n for n in names if n not in known)
    return merged


def id_differences(first: list[str], second: list[str], shown: int = 5) -> str:
    """``id 3: 'rice' vs 'bread'`` for the first ``shown`` ids whose class differs (``-``: no such id)."""
    differ = [(i, first[i] if i < len(first) else "-", second[i] if i < len(second) else "-")
              for i in range(max(len(first), len(second)))
              if i >= min(len(first), len(second)) or first[i] != second[i]]
    listed = ", ".join(f"id {i}: {a!r} vs {b!r}" for i, a, b in differ[:shown])
    return listed + (f" and {len(differ) - shown} more" if len(differ) > shown else "")
