"""Task specifications: what each head predicts and how its labels are encoded.

Label conventions (a missing label is masked, never NaN):
- multiclass: int64 class index, ``IGNORE_INDEX`` (-1) when the sample has no label;
- multilabel: float 0/1 vector, all ``IGNORE_INDEX`` when the sample has no label;
- segmentation: int64 mask of class ids, ``SEG_IGNORE`` (255) on unlabelled pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

IGNORE_INDEX = -1
SEG_IGNORE = 255

TaskKind = Literal["multiclass", "multilabel", "segmentation"]

# Default kind of each task that SynthFood, Food-101 and FoodX-251 provide.
TASK_KINDS: dict[str, TaskKind] = {
    "dish": "multiclass",
    "category": "multiclass",
    "cuisine": "multiclass",
    "ingredients": "multilabel",
    "segmentation": "segmentation",
}


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: TaskKind
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)
