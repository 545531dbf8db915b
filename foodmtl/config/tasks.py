"""The task names a config can list: each with its kind (``foodmtl/tasks/<kind>.py``) and the
SampleTable column its labels come from. Light (no torch), so names are checked before the heavy
imports; ``foodmtl.tasks`` re-exports it. Regression tasks are per-image scalars in the units of
their data set (grams, kcal)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownTask:
    kind: str
    column: str        # the SampleTable column its labels come from


# Tasks the readers can label, their kind and table column. Regression tasks are per-image
# scalars in the units of their data set (grams, kcal).
KNOWN_TASKS: dict[str, KnownTask] = {
    "dish": KnownTask("multiclass", "dish"),
    "category": KnownTask("multiclass", "category"),
    "cuisine": KnownTask("multiclass", "cuisine"),
    "ingredients": KnownTask("multilabel", "ingredients"),
    "foodgroups": KnownTask("multilabel", "foodgroups"),  # MAFood-121's 10 food groups per image
    "segmentation": KnownTask("segmentation", "mask"),
    "instances": KnownTask("instances", "instances"),
    "mass": KnownTask("regression", "mass"),
    "calories": KnownTask("regression", "calories"),
    "fat": KnownTask("regression", "fat"),
    "carb": KnownTask("regression", "carb"),
    "protein": KnownTask("regression", "protein"),
}
TASK_KINDS: dict[str, str] = {name: t.kind for name, t in KNOWN_TASKS.items()}
