"""t-SNE maps of a model's pooled backbone features, coloured by a task's labels."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from sklearn.manifold import TSNE
from torch.utils.data import DataLoader, Subset

from foodmtl.data.dataset import FoodDataset
from foodmtl.data.decode import decode_side
from foodmtl.data.transforms import eval_transform
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tasks import IGNORE_INDEX, TaskSpec

MAX_LEGEND = 20  # more classes than this: colours only


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
    """Pooled features (N, D) and the multiclass labels (N,) of every readable sample."""
    model.eval()
    features, labels = [], {}
    for batch in loader:
        if not batch.targets:
            continue
        features.append(model(batch.images.to(device)).representation.float().cpu())
        for name, target in batch.targets.items():
            if target.dim() == 1:
                labels.setdefault(name, []).append(target)
    if len(features) == 0:
        raise ValueError("no readable samples to embed")
    return torch.cat(features).numpy(), {k: torch.cat(v).numpy() for k, v in labels.items()}


def tsne(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, 2) t-SNE coordinates; perplexity shrinks for small N (it must stay below N)."""
    perplexity = min(30.0, max(1.0, (len(features) - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def scatter(points: np.ndarray, labels: np.ndarray, task: TaskSpec, path: Path) -> None:
    """Points coloured by class; unlabelled samples grey; a legend for up to ``MAX_LEGEND`` classes."""
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.add_subplot()
    cmap = colormaps["tab20" if task.num_classes <= 20 else "turbo"].resampled(task.num_classes)
    unlabelled = labels == IGNORE_INDEX
    ax.scatter(*points[unlabelled].T, s=8, c="lightgrey", label="unlabelled" if unlabelled.any() else None)
    for k in np.unique(labels[~unlabelled]):
        ax.scatter(*points[labels == k].T, s=8, color=cmap(int(k)),
                   label=task.classes[k])
    ax.set(title=f"t-SNE of pooled features, coloured by {task.name}", xticks=[], yticks=[])
    if task.num_classes <= MAX_LEGEND:
        ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.savefig(path, dpi=120)


def embedding_maps(model: MultiTaskModel, loader: DataLoader, device: torch.device, out_dir: Path,
                   tasks: tuple[str, ...] = ("dish", "cuisine")) -> list[Path]:
    """``tsne_<task>.png`` in ``out_dir`` for each of ``tasks`` the model has; returns the paths."""
    features, labels = embed(model, loader, device)
    points = tsne(features)
    specs = {t.name: t for t in model.tasks}
    written = []
    for name in (t for t in tasks if t in specs and t in labels):
        written.append(out_dir / f"tsne_{name}.png")
        scatter(points, labels[name], specs[name], written[-1])
    return written

