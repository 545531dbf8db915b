"""Segmentation pictures at evaluation: image | ground truth | prediction, PNG and W&B."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from foodmtl.data.dataset import FoodDataset
from foodmtl.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from foodmtl.engine.finish import FinishedRun
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.utils.output import atomic_write
from foodmtl.tasks import SEG_IGNORE, get_kind
from foodmtl.viz.overlay import comparison_figure, denormalised


def labelled_samples(dataset: FoodDataset, task: str, count: int) -> list[dict]:
    """The first ``count`` readable samples of ``dataset`` that have a mask for ``task``."""
    samples = []
    for i in range(len(dataset)):
        item = dataset[i]
        if "skipped" not in item and bool((item["targets"][task] != SEG_IGNORE).any()):
            samples.append(item)
            if len(samples) == count:
                break
    return samples


@torch.no_grad()
def mask_overlays(model: MultiTaskModel, dataset: FoodDataset, out_dir: Path, device: torch.device,
                  count: int = 8) -> list[tuple[Path, np.ndarray, np.ndarray, np.ndarray]]:
    """Write ``<stem>.png`` (image | ground truth | prediction) for up to ``count`` eval samples.

    Returns (png path, image, true mask, predicted mask) per sample, for W&B.
    """
    task = next((t for t in model.tasks if get_kind(t.kind).dense), None)
    if task is None:
        return []
    was_training = model.training
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for item in labelled_samples(dataset, task.name, count):
        logits = model(item["image"][None].to(device)).logits[task.name]
        predicted = logits.argmax(1)[0].cpu().numpy().astype(np.int64)
        truth = item["targets"][task.name].numpy().astype(np.int64)
        image = denormalised(item["image"].numpy(), IMAGENET_MEAN, IMAGENET_STD)
        path = out_dir / f"{Path(item['path']).stem}.png"
        picture = comparison_figure(image, truth, predicted, list(task.classes), SEG_IGNORE)
        atomic_write(path, lambda f: picture.save(f, format="PNG"))  # a full disk: OutputError, no partial PNG
        written.append((path, image, truth, predicted))
    model.train(was_training)
    return written


def save_overlays(run: FinishedRun) -> None:
    """After training: ``train.overlays`` eval images' overlays of the reported model, as PNG files
    in ``<run>/overlays`` and as W&B images with mask layers."""
    if run.cfg.train.overlays <= 0:
        return
    written = mask_overlays(run.model, run.eval_set, run.run_dir / "overlays", run.device, run.cfg.train.overlays)
    wandb = run.tracker.wandb
    if written and wandb is not None and wandb.run is not None:
        classes = next(t.classes for t in run.model.tasks if get_kind(t.kind).dense)
        wandb.log_images("eval/overlays", wandb_mask_images(written, list(classes)), run.step)


def wandb_mask_images(written: list, classes: list[str]) -> list:
    """wandb.Image objects with interactive ground-truth/prediction mask layers."""
    import wandb

    labels = dict(enumerate(classes))
    return [wandb.Image(image, caption=path.stem,
                        masks={"ground_truth": {"mask_data": np.where(truth == SEG_IGNORE, 0, truth),
                                                "class_labels": labels},
                               "prediction": {"mask_data": predicted, "class_labels": labels}})
            for path, image, truth, predicted in written]
