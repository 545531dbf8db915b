"""Confusion matrices of the multiclass tasks, from one prediction pass, as row-normalised plots."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassConfusionMatrix

from foodmtl.engine.distributed import DistInfo
from foodmtl.engine.evaluate import autocast
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tasks import IGNORE_INDEX, TaskSpec

MAX_TICK_LABELS = 40  # more classes than this: axes without class names


@torch.no_grad()
def confusion_matrices(model: MultiTaskModel, loader: DataLoader, info: DistInfo,
                       amp: str = "none") -> dict[str, Tensor]:
    """(C, C) counts per multiclass task, rows true classes, columns predictions, summed over
    ranks (every rank must call this); unlabelled samples count nowhere."""
    model.eval()
    tasks = [t for t in model.tasks if t.kind == "multiclass"]
    metrics = {t.name: MulticlassConfusionMatrix(t.num_classes, ignore_index=IGNORE_INDEX).to(info.device)
               for t in tasks}
    for batch in loader:
        if not batch.targets:
            continue
        batch = batch.to(info.device)
        with autocast(info.device, amp):
            logits = model(batch.images).logits
        for name, metric in metrics.items():
            metric.update(logits[name].float(), batch.targets[name])
    return {name: metric.compute().cpu() for name, metric in metrics.items()}


def row_normalised(counts: Tensor) -> np.ndarray:
    """Each true class's row as fractions (rows without samples stay 0)."""
    counts = counts.double()
    return (counts / counts.sum(1, keepdim=True).clamp(min=1)).numpy()


def plot_confusion(counts: Tensor, task: TaskSpec, path: Path) -> None:
    """Row-normalised heat map; class names on the axes for up to ``MAX_TICK_LABELS`` classes."""
    n = task.num_classes
    side = min(16.0, 3.0 + 0.25 * n)
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(row_normalised(counts), cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    ax.set(title=f"{task.name}: confusion (row-normalised)", xlabel="predicted", ylabel="true")
    if n <= MAX_TICK_LABELS:
        ax.set_xticks(range(n), task.classes, rotation=90, fontsize=7)
        ax.set_yticks(range(n), task.classes, fontsize=7)
    else:
        ax.set(xticks=[], yticks=[])
    fig.savefig(path, dpi=120)


def confusion_plots(model: MultiTaskModel, loader: DataLoader, info: DistInfo, out_dir: Path,
                    amp: str = "none") -> list[Path]:
    """``confusion_<task>.png`` per multiclass task, written by rank 0; returns its paths."""
    matrices = confusion_matrices(model, loader, info, amp)
    if not info.is_main:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = {t.name: t for t in model.tasks}
    paths = []
    for name, counts in matrices.items():
        paths.append(out_dir / f"confusion_{name}.png")
        plot_confusion(counts, specs[name], paths[-1])
    return paths
