"""Predictions for image files: every task's prediction as its kind reports it.

Each image goes through the eval transform (short side resized, centre crop), so a mask
picture shows the square crop the model saw; what a kind reports in the file's own pixels (instances'
COCO results) it maps back through the crop's ``ImageView``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from foodmtl.data.dataset import UNREADABLE
from foodmtl.data.decode import decode_side, load_rgb
from foodmtl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, eval_view
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tasks import get_kind
from foodmtl.tasks.base import ImageView, PredictContext
from foodmtl.viz.overlay import denormalised


def model_view(path: str, transform) -> tuple[Tensor, np.ndarray, ImageView]:
    """The normalised (3, S, S) input for ``path``, the same pixels as uint8 (S, S, 3), and where they
    lie in the file."""
    with Image.open(path) as img:
        width, height = img.size
    rgb = load_rgb(path, decode_side(transform))
    tensor = transform(image=rgb)["image"]
    view = ImageView(eval_view((height, width), rgb.shape[:2], tensor.shape[-1]), (height, width))
    return tensor, denormalised(tensor.numpy(), IMAGENET_MEAN, IMAGENET_STD), view


@torch.no_grad()
def predict(model: MultiTaskModel, paths: list[str], image_size: int, device: torch.device | str = "cpu",
            threshold: float = 0.5, top_k: int = 5, out_dir: Path | None = None) -> list[dict]:
    """One record per image: ``{"image", <task>: ...}``, or ``{"image", "error"}`` if unreadable.
    With ``out_dir``, kinds that draw (segmentation) write ``overlay_<i>_<stem>.png`` there."""
    model.eval()
    transform = eval_transform(image_size)
    records = []
    for i, path in enumerate(paths):
        try:
            tensor, pixels, view = model_view(path, transform)
        except UNREADABLE as exc:
            records.append({"image": path, "error": f"cannot read image: {exc}"})
            continue
        outputs = {k: v[0] for k, v in model(tensor[None].to(device)).logits.items()}
        picture = out_dir / f"overlay_{i:03d}_{Path(path).stem}.png" if out_dir else None
        context = PredictContext(threshold, top_k, pixels, picture, view)
        records.append({"image": path, **{t.name: get_kind(t.kind).describe(t, outputs[t.name], context)
                                          for t in model.tasks}})
    return records
