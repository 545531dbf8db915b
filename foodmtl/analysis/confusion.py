"""Confusion matrices of the single-label tasks from one prediction pass: a row-normalised heat
map, and the most frequent confusions as a table (CSV and PNG).

Every class keeps its name on the axes: the canvas grows with the class count (``LABEL_PITCH``
inches, room for a 6 pt name, per class) up to ``MAX_SIDE`` inches, which holds FoodX-251;
beyond that every k-th class is named and the axis says so. With hundreds of classes the heat
map shows where confusion is, the pairs table which classes.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassConfusionMatrix

from foodmtl.engine.distributed import DistInfo
from foodmtl.engine.evaluate import autocast
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tasks import IGNORE_INDEX, TaskSpec, get_kind

MAX_CELL_COUNTS = 20  # up to this many classes each cell shows its count
LABEL_PITCH = 0.11    # inches per class at least: a 6 pt class name fits
MAX_SIDE = 28.0       # inches of heat map at most
TOP_PAIRS = 20
DPI = 120


@torch.no_grad()
def confusion_matrices(model: MultiTaskModel, loader: DataLoader, info: DistInfo,
                       amp: str = "none") -> dict[str, Tensor]:
    """(C, C) counts per single-label task, rows true classes, columns predictions, summed over
    ranks (every rank must call this); unlabelled samples count nowhere."""
    model.eval()
    tasks = [t for t in model.tasks if get_kind(t.kind).single_label]
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


def summary(counts: Tensor) -> str:
    """``N = ..., top-1 accuracy ...`` of a confusion matrix."""
    total = int(counts.sum())
    if total == 0:
        return "no labelled samples"
    return f"N = {total:,} labelled samples, top-1 accuracy {float(counts.trace()) / total:.1%}"


def label_step(n: int) -> int:
    """Name every k-th class so that names keep ``LABEL_PITCH`` inches within ``MAX_SIDE``."""
    return max(1, math.ceil(n * LABEL_PITCH / MAX_SIDE))


def confusion_figure(counts: Tensor, task: TaskSpec) -> Figure:
    """Row-normalised heat map titled with N and accuracy; counts in the cells up to
    ``MAX_CELL_COUNTS`` classes; class names on both axes (every ``label_step``-th beyond ``MAX_SIDE``)."""
    n = task.num_classes
    cell = min(0.4, max(LABEL_PITCH, 10.0 / n))
    side = min(MAX_SIDE, max(4.0, n * cell))
    fontsize = 7 if cell >= 0.15 else 6
    fig = Figure(figsize=(side + 3.0, side + 1.5), layout="constrained")
    ax = fig.add_subplot()
    fractions = row_normalised(counts)
    image = ax.imshow(fractions, cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=min(0.8, 6.0 / side + 0.2), label="fraction of the true class")
    ax.set_title(f"{task.name}: confusion matrix (rows normalised)\n{summary(counts)}", fontsize=10)
    step = label_step(n)
    note = f" (one class in {step} named)" if step > 1 else ""
    ax.set_xlabel("predicted" + note)
    ax.set_ylabel("true" + note)
    ticks = range(0, n, step)
    names = [task.classes[i] for i in ticks]
    ax.set_xticks(ticks, names, rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, names, fontsize=fontsize)
    if n <= MAX_CELL_COUNTS:
        for (row, col), count in np.ndenumerate(counts.numpy()):
            if count:
                ax.text(col, row, str(count), ha="center", va="center", fontsize=fontsize,
                        color="black" if fractions[row, col] > 0.6 else "white")
    return fig


def confused_pairs(counts: Tensor, classes: tuple[str, ...] | list[str], k: int = TOP_PAIRS) -> pd.DataFrame:
    """The ``k`` most frequent (true, predicted) pairs of different classes: count and its fraction
    of the true class's samples; ties by fraction, then class order."""
    matrix = counts.numpy().astype(np.int64)
    totals = matrix.sum(1)
    rows = [(classes[t], classes[p], int(matrix[t, p]), matrix[t, p] / totals[t], t, p)
            for t, p in zip(*np.nonzero(matrix)) if t != p]
    rows.sort(key=lambda r: (-r[2], -r[3], r[4], r[5]))
    return pd.DataFrame([r[:4] for r in rows[:k]], columns=["true", "predicted", "count", "fraction_of_true"])


def pairs_figure(pairs: pd.DataFrame, task: TaskSpec, counts: Tensor) -> Figure:
    """The pairs as a table, titled with N and accuracy."""
    fig = Figure(figsize=(7.5, 0.8 + 0.22 * (len(pairs) + 1)), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(f"{task.name}: the {len(pairs)} most frequent confusions\n{summary(counts)}", fontsize=10)
    if pairs.empty:
        ax.text(0.5, 0.5, "no confusions", ha="center", va="center", transform=ax.transAxes)
        return fig
    cells = [[str(i + 1), r.true, r.predicted, str(r.count), f"{r.fraction_of_true:.1%}"]
             for i, r in enumerate(pairs.itertuples())]
    table = ax.table(cells, colLabels=["#", "true class", "predicted as", "count", "% of true class"],
                     bbox=(0, 0, 1, 1), cellLoc="left", colLoc="left", colWidths=[0.06, 0.36, 0.36, 0.1, 0.16])
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    return fig


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def confusion_plots(model: MultiTaskModel, loader: DataLoader, info: DistInfo, out_dir: Path,
                    amp: str = "none") -> list[Path]:
    """Per single-label task ``confusion_<task>.png`` and ``confused_pairs_<task>.csv``/``.png``,
    written by rank 0; returns their paths."""
    matrices = confusion_matrices(model, loader, info, amp)
    if not info.is_main:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = {t.name: t for t in model.tasks}
    paths = []
    for name, counts in matrices.items():
        task = specs[name]
        pairs = confused_pairs(counts, task.classes)
        pairs.to_csv(out_dir / f"confused_pairs_{name}.csv", index=False, float_format="%.6g")
        paths += [save(confusion_figure(counts, task), out_dir / f"confusion_{name}.png"),
                  out_dir / f"confused_pairs_{name}.csv",
                  save(pairs_figure(pairs, task, counts), out_dir / f"confused_pairs_{name}.png")]
    return paths
