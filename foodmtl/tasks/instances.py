"""Instance segmentation: Mask R-CNN boxes, classes and masks on the shared backbone (docs/instances.md).

Label: ``<COCO instance json>#<image id>`` (``foodmtl/data/sets/coco_instances.py``; SynthFood writes
one per split). ``load`` rasterises the image's instances into ``masks``, which albumentations
crops, flips and warps with the image (nearest); boxes are then taken from the transformed masks,
so they always fit them, and an instance the crop removed is dropped. An unlabelled image's
target is "no label" and adds no instance loss; a labelled image with no instance left is a
negative. Head: ``foodmtl/models/instance_head.py`` (FPN + RPN + RoI heads of torchvision) on
the backbone's maps. Loss: the sum of the five Mask R-CNN losses; with ``separate_losses: true``
each enters the weighting strategy as its own task ``instances:<component>`` (``:``, since
strategies keep per-task parameters in dicts whose keys cannot hold a dot). The eval split's loss
is the mean over its labelled images of each image's loss computed alone, anchors and RoIs
sampled by a generator seeded alike for every image, so batching, ranks and the RNG's state at
evaluation cannot change it (``InstanceHead.image_losses``). Metrics: COCO
bbox and segm AP, AP50, AP75 (``foodmtl/tasks/metrics/coco.py``). Prediction: the instances
(class, score, xywh box, RLE mask), and a picture when one is asked for.
"""
from __future__ import annotations

import logging

import pandas as pd
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.ops import masks_to_boxes

from foodmtl.data.columns import StringColumn
from foodmtl.data.instance_targets import Instances
from foodmtl.tasks import TaskSpec
from foodmtl.tasks.base import ImageView, PredictContext, TaskKind, with_options

log = logging.getLogger(__name__)

METRICS = {f"{t}_{m}": "max" for t in ("segm", "bbox") for m in ("AP", "AP50", "AP75")}
FRACTIONS = frozenset(METRICS)
REPORT_SCORE = 0.5  # predict reports instances at least this confident
_WARNED: set[str] = set()  # tasks already warned about lacking COCO category ids


class InstanceSegmentation(TaskKind):
    name = "instances"
    metrics_directions = METRICS
    primary_metric = "segm_AP"
    multiscale = True
    pixel_labels = True
    defaults = {"fpn_channels": 256, "box_head_dim": 1024, "mask_head_layers": 4, "anchor_scale": 8,
                "proposals": 1000, "rois_per_image": 512, "score_threshold": 0.05, "detections_per_image": 100,
                "separate_losses": False}

    def check_options(self, task, given):
        options = super().check_options(task, given)
        for key, value in options.items():
            wanted = bool if key == "separate_losses" else float if key == "score_threshold" else int
            if not isinstance(value, wanted if wanted is not float else (int, float)) or (
                    wanted is int and (isinstance(value, bool) or value < 1)):
                raise ValueError(f"task_options.{task}.{key}={value!r}; expected "
                                 f"{'true or false' if wanted is bool else 'a number' if wanted is float else 'a positive integer'}")
        return options

    def loss_names(self, spec: TaskSpec) -> list[str]:
        from foodmtl.models.instance_head import COMPONENTS
        if spec.options.get("separate_losses"):
            return [f"{spec.name}:{c}" for c in COMPONENTS.values()]
        return [spec.name]

    # ---- data ---------------------------------------------------------------------------
    def encode(self, spec: TaskSpec, column: pd.Series) -> StringColumn:
        return StringColumn(column)

    def load(self, spec: TaskSpec, label: str | None, image_hw: tuple[int, int]) -> tuple:
        if label is None:
            return None, {}
        from foodmtl.data.sets.coco_instances import load_instances
        masks, classes, crowd = load_instances(label, image_hw, spec.classes)
        return (label, classes, crowd), ({"masks": masks} if len(masks) else {})

    def target(self, spec: TaskSpec, label, transformed: dict) -> Instances:
        if label is None:
            return Instances([None], [None])
        key, classes, crowd = label
        size = tuple(transformed["image"].shape[-2:])
        masks = transformed.get("masks", torch.zeros((0, *size), dtype=torch.uint8))
        masks = torch.as_tensor(masks).to(torch.uint8)
        kept = masks.flatten(1).bool().any(1)
        masks, classes = masks[kept], torch.as_tensor(classes, dtype=torch.int64)[kept]
        crowd = torch.as_tensor(crowd, dtype=torch.bool)[kept]
        boxes = masks_to_boxes(masks).float() + torch.tensor([0.0, 0.0, 1.0, 1.0])  # pixel edges, as COCO's
        objects = ~crowd  # crowd regions: for COCOeval only (tasks/metrics/coco.py), never trained on
        return Instances([{"boxes": boxes[objects], "labels": classes[objects], "masks": masks[objects],
                           "crowd_masks": masks[crowd], "crowd_labels": classes[crowd]}], [key])

    def labelled(self, target: Instances) -> Tensor:
        return target.labelled()

    # ---- model, loss, metrics, predictions ----------------------------------------------
    def map_head(self, spec: TaskSpec, channels: list[int], reductions: list[int]) -> nn.Module:
        from foodmtl.models.instance_head import InstanceHead
        return InstanceHead(channels, reductions, spec.num_classes, {**self.defaults, **spec.options})

    def loss(self, spec: TaskSpec, output, target: Instances) -> Tensor:
        return sum(output.head.losses(output, target).values())

    def loss_terms(self, spec: TaskSpec, output, target: Instances) -> dict[str, Tensor]:
        losses = output.head.losses(output, target)
        if spec.options.get("separate_losses"):
            return {f"{spec.name}:{k}": v for k, v in losses.items()}
        return {spec.name: sum(losses.values())}

    def eval_loss_state(self, spec: TaskSpec, output, target: Instances) -> Tensor:
        """(sum of the labelled images' losses, each computed alone: ``InstanceHead.image_losses``,
        labelled images)."""
        losses = output.head.image_losses(output, target).double()
        return torch.stack([losses.sum(), losses.new_tensor(float(len(losses)))])

    def metrics(self, spec: TaskSpec) -> nn.Module:
        from foodmtl.tasks.metrics.coco import InstanceMetrics
        return InstanceMetrics(spec.num_classes)

    def fit(self, spec: TaskSpec, column: pd.Series) -> TaskSpec:
        """``category_ids``: each class's COCO category id in the training split's annotation files,
        which predict writes into coco_results.json; left out when a class has none or several there."""
        from foodmtl.data.sets.coco_instances import category_ids
        found = category_ids(sorted({label.rsplit("#", 1)[0] for label in column.dropna()}))
        ids = [sorted(found.get(name, ())) for name in spec.classes]
        unclear = [f"{name!r} (ids {i or 'none'})" for name, i in zip(spec.classes, ids) if len(i) != 1]
        if unclear:
            log.warning("%s: no single COCO category id for %s in the annotation files; coco_results.json "
                        "will carry class index + 1", spec.name, ", ".join(unclear[:5]))
            return spec
        return with_options(spec, {**spec.options, "category_ids": [i[0] for i in ids]})

    def describe(self, spec: TaskSpec, output, context: PredictContext) -> dict:
        """Instances scoring at least ``REPORT_SCORE`` as COCO results (image_id left to the caller),
        with the data set's category ids and full-precision scores and boxes."""
        from foodmtl.tasks.metrics.coco import detections
        found = output.head.detect(output)[0]
        keep = found["scores"] >= REPORT_SCORE
        found = {k: v[keep] for k, v in found.items()}
        ids = coco_category_ids(spec)
        in_file = in_original(found, context.view) if context.view is not None else found
        instances = [{"class": spec.classes[k], "category_id": ids[k], "score": r["score"], "bbox": r["bbox"],
                      "segmentation": {"size": r["segmentation"]["size"],
                                       "counts": r["segmentation"]["counts"].decode()}}
                     for k, r in zip(in_file["labels"].tolist(), detections(in_file))]
        out: dict = {"instances": instances}
        if context.picture is not None and context.pixels is not None:
            from foodmtl.utils.output import atomic_write
            from foodmtl.viz.instances import instance_figure
            picture = instance_figure(context.pixels, found, list(spec.classes))
            atomic_write(context.picture, lambda f: picture.save(f, format="PNG"))
            out["overlay"] = str(context.picture)
        return out


def in_original(found: dict[str, Tensor], view: ImageView) -> dict[str, Tensor]:
    """Detections on the model's square input placed in the image file's pixels, as COCO results on
    the file's annotations need them: boxes scaled and shifted, mask probabilities resized onto the
    crop's place (bilinear) and thresholded at 0.5, one mask at a time (a byte a pixel), 0 outside it."""
    x0, y0, x1, y1 = view.box
    side = found["masks"].shape[-1]
    fx, fy = (x1 - x0) / side, (y1 - y0) / side
    boxes = found["boxes"].cpu() * torch.tensor([fx, fy, fx, fy]) + torch.tensor([x0, y0, x0, y0])
    height, width = view.size
    top, left = round(y0), round(x0)
    bottom, right = min(round(y1), height), min(round(x1), width)
    masks = torch.zeros((len(boxes), height, width), dtype=torch.uint8)
    for mask, probabilities in zip(masks, found["masks"].cpu().float()):
        mask[top:bottom, left:right] = F.interpolate(probabilities[None, None], size=(bottom - top, right - left),
                                                     mode="bilinear", align_corners=False)[0, 0] > 0.5
    return {**found, "boxes": boxes, "masks": masks}


def coco_category_ids(spec: TaskSpec) -> list[int]:
    """The data set's COCO category id of each class; index + 1 (with a warning, once) for a checkpoint
    saved before they were recorded, or trained on files that disagree on them."""
    if "category_ids" in spec.options:
        return list(spec.options["category_ids"])
    if spec.name not in _WARNED:
        _WARNED.add(spec.name)
        log.warning("%s: the checkpoint records no COCO category ids; coco_results.json carries class index + 1",
                    spec.name)
    return list(range(1, spec.num_classes + 1))


KIND = InstanceSegmentation()
