"""Segmentation pictures at evaluation: ground truth | prediction overlays, PNG and W&B."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from foodmtl.data.dataset import FoodDataset
from foodmtl.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tasks import SEG_IGNORE
from foodmtl.viz.overlay import overlay_mask


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """A normalised (3, H, W) tensor back to (H, W, 3) uint8."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = (image.float().cpu() * std + mean).clamp(0, 1) * 255
    return pixels.round().byte().permute(1, 2, 0).numpy()


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
    """Write ``<stem>.png`` (ground truth left, prediction right) for up to ``count`` eval samples.

    Returns (png path, image, true mask, predicted mask) per sample, for W&B.
    """
    task = next((t for t in model.tasks if t.kind == "segmentation"), None)
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
        image = to_uint8(item["image"])
        panels = [overlay_mask(image, m, list(task.classes), SEG_IGNORE) for m in (truth, predicted)]
        path = out_dir / f"{Path(item['path']).stem}.png"
        side_by_side(panels).save(path)
        written.append((path, image, truth, predicted))
    model.train(was_training)
    return written


def side_by_side(panels: list[Image.Image]) -> Image.Image:
    width, height = sum(p.width for p in panels), max(p.height for p in panels)
    canvas = Image.new("RGB", (width, height), "white")
    x = 0
    for panel in panels:
        canvas.paste(panel, (x, 0))
        x += panel.width
    return canvas


def wandb_mask_images(written: list, classes: list[str]) -> list:
    """wandb.Image objects with interactive ground-truth/prediction mask layers."""
    import wandb

    labels = dict(enumerate(classes))
    return [wandb.Image(image, caption=path.stem,
                        masks={"ground_truth": {"mask_data": np.where(truth == SEG_IGNORE, 0, truth),
                                                "class_labels": labels},
                               "prediction": {"mask_data": predicted, "class_labels": labels}})
            for path, image, truth, predicted in written]
