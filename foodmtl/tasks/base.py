"""The contract of a task kind; ``foodmtl/tasks/<kind>.py`` each implement it once.

A kind turns a table column into compact per-sample labels (``encode``), a label into a
training target with its own absent marker (``target``; ``load`` reads what must go through
the image transform with it, e.g. a mask), builds its head on the pooled features (or asks for
the segmentation decoder: ``dense``), computes the masked loss (0 with a zero gradient when no
sample is labelled) and the same loss over the whole evaluation set (``eval_loss_state``, additive
statistics summed over batches and ranks, turned into the loss once by ``eval_loss_value``),
declares and computes its metrics (only labelled samples count) and reports one image's
prediction. Everything task-specific a kind needs at run time is in the ``TaskSpec``: ``options``
(validated by ``check_options``) and ``stats`` (from ``fit`` on the training labels), both saved
in checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from foodmtl.tasks import KNOWN_TASKS, Direction, TaskSpec


@dataclass
class ImageView:
    """Where the model's square input lies in the image file: ``box`` (x0, y0, x1, y1) in the file's
    pixels, ``size`` its (H, W) (``foodmtl.data.transforms.eval_view``)."""
    box: tuple[float, float, float, float]
    size: tuple[int, int]


@dataclass
class PredictContext:
    """What reporting one image's prediction may use."""
    threshold: float = 0.5            # multilabel: report classes at or above this probability
    top_k: int = 5                    # multiclass: report this many classes
    pixels: np.ndarray | None = None  # the (S, S, 3) uint8 view the model saw
    picture: Path | None = None       # where a kind that draws (segmentation) writes its picture
    view: ImageView | None = None     # the model's input in the file's pixels; None: report in the input's


class TaskKind:
    name: ClassVar[str]
    metrics_directions: ClassVar[dict[str, Direction]]
    primary_metric: ClassVar[str]       # the single-task baseline's best_metric
    dense: ClassVar[bool] = False       # predicted per pixel by the segmentation decoder
    pixel_labels: ClassVar[bool] = False  # labels drawn on the image's full-size pixel grid (masks):
                                          # its image is decoded at full size, never reduced
    multiscale: ClassVar[bool] = False  # its head reads the backbone's maps (``map_head``), not the pooled vector
    ids_in_files: ClassVar[bool] = False  # its label files store class ids (masks): every source of a run
                                          # must list the same classes in the same order
    likelihood: ClassVar[str] = "categorical"  # its loss's likelihood: categorical, or gaussian (regression);
                                                # uncertainty weighting scales a gaussian task by 1/2
    single_label: ClassVar[bool] = False  # one class per image: confusion matrices, t-SNE colours
    defaults: ClassVar[dict[str, Any]] = {}

    # ---- configuration ------------------------------------------------------------------
    def check_options(self, task: str, given: dict[str, Any]) -> dict[str, Any]:
        """``defaults`` updated by ``given``; unknown names or bad values raise ValueError."""
        unknown = set(given) - set(self.defaults)
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "none"
            raise ValueError(f"task_options.{task}: unknown option(s) {sorted(unknown)} for a "
                             f"{self.name} task; valid: {valid}")
        return {**self.defaults, **given}

    def classes(self, name: str, vocab: dict[str, list[str]], options: dict[str, Any]) -> list[str]:
        """The task's classes from the data's vocabulary (empty: the data does not label it)."""
        return list(vocab.get(name) or [])

    def unit(self, spec: TaskSpec) -> str | None:
        """The unit of the task's values (regression: g, kcal); None for kinds whose metrics have none."""
        return None

    def prepare(self, spec: TaskSpec, vocab: dict[str, list[str]]) -> TaskSpec:
        """The spec checked, with what its kind derives from the whole vocabulary (default: as is);
        ValueError when the data cannot serve it."""
        return spec

    def fit(self, spec: TaskSpec, column: pd.Series) -> TaskSpec:
        """The spec with what it learns from the training split's column (default: nothing)."""
        return spec

    def metric_names(self, spec: TaskSpec) -> list[str]:
        return list(self.metrics_directions)

    def loss_names(self, spec: TaskSpec) -> list[str]:
        """The losses it hands the weighting strategy, each weighted as a task (default: one, the task's
        name); a kind with several implements ``loss_terms(spec, output, target) -> {name: loss}``."""
        return [spec.name]

    # ---- data ---------------------------------------------------------------------------
    def labels(self, spec: TaskSpec, frame: pd.DataFrame):
        """Compact per-row labels of a SampleTable frame; ``labels[i]`` is a label or None."""
        return self.encode(spec, frame[KNOWN_TASKS[spec.name].column])

    def encode(self, spec: TaskSpec, column: pd.Series):
        """Compact labels (``foodmtl.data.columns``) of the task's own column."""
        raise NotImplementedError

    def load(self, spec: TaskSpec, label, image_hw: tuple[int, int]) -> tuple[Any, dict[str, np.ndarray]]:
        """Read what a label points to: the label to use, and arrays that must go through the
        image transform with the image (e.g. ``mask``). Default: the label as it is, nothing."""
        return label, {}

    def target(self, spec: TaskSpec, label, transformed: dict) -> Tensor:
        """The training target of one sample; the kind's absent marker when ``label`` is None."""
        raise NotImplementedError

    def labelled(self, target: Tensor) -> Tensor:
        """(B,) bool: which samples of a batched target carry a label."""
        raise NotImplementedError

    # ---- model, loss, metrics, predictions ----------------------------------------------
    def head(self, spec: TaskSpec, in_features: int, drop_rate: float) -> nn.Module | None:
        """Its head on the pooled features; None for a dense kind (the decoder predicts it)."""
        return None

    def map_head(self, spec: TaskSpec, channels: list[int], reductions: list[int]) -> nn.Module:
        """A ``multiscale`` kind's head: ``head(maps, image_hw)`` on the backbone's feature maps."""
        raise NotImplementedError

    def loss(self, spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def sample_losses(self, spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
        """(B,) each sample's loss (0 where unlabelled), for a kind whose ``loss`` is their mean over
        the labelled samples."""
        raise NotImplementedError

    def eval_loss_size(self, spec: TaskSpec) -> int:
        """The length of ``eval_loss_state`` (every rank sums one such vector, even with no batch)."""
        return 2

    def eval_loss_state(self, spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
        """Float64 statistics of a batch that add over batches and ranks, from which ``eval_loss_value``
        computes the loss of the whole evaluation set, so that it cannot depend on how the set is
        batched or sharded. Default: (sum of ``sample_losses`` over labelled samples, labelled samples)."""
        keep = self.labelled(target)
        losses = self.sample_losses(spec, output, target)[keep].double()
        return torch.stack([losses.sum(), keep.sum().double()])

    def eval_loss_value(self, spec: TaskSpec, state: Tensor) -> float | None:
        """The loss from the statistics summed over the evaluation set; None when nothing was labelled.
        Default: the mean of the per-sample losses over the labelled samples."""
        return float(state[0] / state[1]) if state[1] > 0 else None

    def metrics(self, spec: TaskSpec) -> nn.Module:
        """A metric module: ``update(output, target)`` on labelled samples, ``compute() -> dict``."""
        raise NotImplementedError

    def describe(self, spec: TaskSpec, output: Tensor, context: PredictContext) -> Any:
        """One image's prediction as JSON-able data."""
        raise NotImplementedError


def with_options(spec: TaskSpec, options: dict[str, Any]) -> TaskSpec:
    return replace(spec, options=dict(options))
