"""Predictions for image files: per-task classes with probabilities, and mask overlays.

Each image goes through the eval transform (short side resized, centre crop), so a mask
overlay shows the square crop the model saw.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from foodmtl.data.dataset import UNREADABLE
from foodmtl.data.decode import decode_side, load_rgb
from foodmtl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tasks import TaskSpec
from foodmtl.viz.overlay import overlay_mask

OVERLAY_SIDE = 256  # small model inputs are enlarged for the picture


def model_view(path: str, transform) -> tuple[Tensor, np.ndarray]:
    """The normalised (3, S, S) input for ``path`` and the same pixels as uint8 (S, S, 3)."""
    tensor = transform(image=load_rgb(path, decode_side(transform)))["image"]
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    pixels = ((tensor * std + mean) * 255).round().clamp(0, 255).byte()
    return tensor, pixels.permute(1, 2, 0).numpy()


def entries(probs: Tensor, classes: tuple[str, ...], indices: list[int]) -> list[dict]:
    return [{"name": classes[i], "prob": round(float(probs[i]), 6)} for i in indices]


def describe(logits: dict[str, Tensor], tasks: list[TaskSpec], threshold: float, top_k: int) -> dict:
    """One image's classification tasks, most probable first: the ``top_k`` classes of a
    multiclass task, the classes at or above ``threshold`` of a multilabel one."""
    out = {}
    for task in tasks:
        scores = logits[task.name].float()
        if task.kind == "multiclass":
            probs = scores.softmax(0)
            out[task.name] = entries(probs, task.classes, probs.topk(min(top_k, len(probs))).indices.tolist())
        elif task.kind == "multilabel":
            probs = scores.sigmoid()
            order = probs.argsort(descending=True).tolist()
            out[task.name] = entries(probs, task.classes, [i for i in order if probs[i] >= threshold])
    return out


def segment(logits: Tensor, pixels: np.ndarray, task: TaskSpec, overlay_path: Path | None) -> dict:
    """Classes of the predicted mask (upsampled to at least ``OVERLAY_SIDE`` px), and its
    overlay picture when ``overlay_path`` is given."""
    side = max(OVERLAY_SIDE, pixels.shape[0])
    mask = F.interpolate(logits[None].float(), size=(side, side), mode="bilinear")[0].argmax(0).cpu().numpy()
    out: dict = {"classes": [task.classes[k] for k in np.unique(mask)]}
    if overlay_path is not None:
        picture = np.asarray(Image.fromarray(pixels).resize((side, side), Image.Resampling.BICUBIC))
        overlay_mask(picture, mask, list(task.classes)).save(overlay_path)
        out["overlay"] = str(overlay_path)
    return out


@torch.no_grad()
def predict(model: MultiTaskModel, paths: list[str], image_size: int, device: torch.device | str = "cpu",
            threshold: float = 0.5, top_k: int = 5, out_dir: Path | None = None) -> list[dict]:
    """One record per image: ``{"image", <task>: ...}``, or ``{"image", "error"}`` if unreadable."""
    model.eval()
    transform = eval_transform(image_size)
    records = []
    for i, path in enumerate(paths):
        try:
            tensor, pixels = model_view(path, transform)
        except UNREADABLE as exc:
            records.append({"image": path, "error": f"cannot read image: {exc}"})
            continue
        logits = {k: v[0] for k, v in model(tensor[None].to(device)).logits.items()}
        record = {"image": path, **describe(logits, model.tasks, threshold, top_k)}
        for task in (t for t in model.tasks if t.kind == "segmentation"):
            where = out_dir / f"overlay_{i:03d}_{Path(path).stem}.png" if out_dir else None
            record[task.name] = segment(logits[task.name], pixels, task, where)
        records.append(record)
    return records
