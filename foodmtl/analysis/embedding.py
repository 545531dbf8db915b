"""t-SNE maps of a model's pooled backbone features, coloured by a single-label task's classes.

Colours are the Glasbey palette (``foodmtl.viz.palette``), so neighbouring class ids get clearly
different hues however many classes there are (``tab20`` resampled to 12 classes gave pairs of
one hue side by side). Up to ``MAX_LEGEND`` classes get a legend; with more, each class's name is
written at the median of its points. The title says which split, how many samples and which
checkpoint the map shows.
"""
from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.manifold import TSNE
from torch.utils.data import DataLoader, Subset

from foodmtl.data.dataset import FoodDataset
from foodmtl.data.decode import decode_side
from foodmtl.data.transforms import eval_transform
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tasks import IGNORE_INDEX, TaskSpec, get_kind
from foodmtl.viz.palette import as_float, class_colours

MAX_LEGEND = 20  # more classes than this: names at the class medians instead of a legend
TITLE_CHARS = 90  # a long checkpoint path wraps instead of running off the figure


def unaugmented(dataset: FoodDataset, image_size: int) -> FoodDataset:
    """The same samples through the eval transform (for train-split embeddings)."""
    view = copy.copy(dataset)
    view.transform = eval_transform(image_size)
    view.decode_side = decode_side(view.transform)
    return view


def subset(dataset: FoodDataset, limit: int, seed: int = 0) -> FoodDataset | Subset:
    """At most ``limit`` samples drawn at random (files are often sorted by class); 0: all."""
    if not 0 < limit < len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, order[:limit].tolist())


@torch.no_grad()
def embed(model: MultiTaskModel, loader: DataLoader, device: torch.device) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Pooled features (N, D) and the single-label tasks' labels (N,) of every readable sample."""
    model.eval()
    single = {t.name for t in model.tasks if get_kind(t.kind).single_label}
    features, labels = [], {}
    for batch in loader:
        if not batch.targets:
            continue
        features.append(model(batch.images.to(device)).representation.float().cpu())
        for name in single & set(batch.targets):
            labels.setdefault(name, []).append(batch.targets[name])
    if len(features) == 0:
        raise ValueError("no readable samples to embed")
    return torch.cat(features).numpy(), {k: torch.cat(v).numpy() for k, v in labels.items()}


def tsne(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, 2) t-SNE coordinates; perplexity shrinks for small N (it must stay below N)."""
    perplexity = min(30.0, max(1.0, (len(features) - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def scatter(points: np.ndarray, labels: np.ndarray, task: TaskSpec, source: str) -> Figure:
    """Points coloured by class, unlabelled samples grey; a legend up to ``MAX_LEGEND`` classes,
    class names at their medians beyond; ``source`` (split and checkpoint) in the title."""
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    ax = fig.add_subplot()
    colours = as_float(class_colours(task.num_classes))
    unlabelled = labels == IGNORE_INDEX
    ax.scatter(*points[unlabelled].T, s=8, c="lightgrey", label="unlabelled" if unlabelled.any() else None)
    for k in np.unique(labels[~unlabelled]):
        mine = points[labels == k]
        ax.scatter(*mine.T, s=8, color=colours[k], label=task.classes[k])
        if task.num_classes > MAX_LEGEND:
            ax.annotate(task.classes[k], np.median(mine, axis=0), fontsize=6, ha="center", va="center",
                        bbox=dict(boxstyle="round,pad=0.1", facecolor="white", alpha=0.6, edgecolor="none"))
    ax.set(xticks=[], yticks=[])
    title = f"t-SNE of pooled backbone features, coloured by {task.name}\n{source}"
    ax.set_title("\n".join(textwrap.fill(line, TITLE_CHARS) for line in title.splitlines()), fontsize=9)
    if task.num_classes <= MAX_LEGEND:
        ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def embedding_maps(model: MultiTaskModel, loader: DataLoader, device: torch.device, out_dir: Path,
                   split: str, checkpoint: str, tasks: tuple[str, ...] = ("dish", "cuisine")) -> list[Path]:
    """``tsne_<task>.png`` in ``out_dir`` for each of ``tasks`` the model has; returns the paths.
    ``split`` and ``checkpoint`` name what the map shows, in its title."""
    features, labels = embed(model, loader, device)
    points = tsne(features)
    source = f"{split} split, N = {len(points):,} samples\ncheckpoint {checkpoint}"
    specs = {t.name: t for t in model.tasks}
    written = []
    for name in (t for t in tasks if t in specs and t in labels):
        written.append(out_dir / f"tsne_{name}.png")
        scatter(points, labels[name], specs[name], source).savefig(written[-1], dpi=120)
    return written

