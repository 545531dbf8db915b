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

import pandas as pd
import torch
from torch import Tensor, nn
from torchvision.ops import masks_to_boxes

from foodmtl.data.columns import StringColumn
from foodmtl.data.instance_targets import Instances
from foodmtl.tasks import TaskSpec
from foodmtl.tasks.base import PredictContext, TaskKind

METRICS = {f"{t}_{m}": "max" for t in ("segm", "bbox") for m in ("AP", "AP50", "AP75")}
FRACTIONS = frozenset(METRICS)
REPORT_SCORE = 0.5  # predict reports instances at least this confident


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
        masks, classes = load_instances(label, image_hw, spec.classes)
        return (label, classes), ({"masks": masks} if len(masks) else {})

    def target(self, spec: TaskSpec, label, transformed: dict) -> Instances:
        if label is None:
            return Instances([None], [None])
        key, classes = label
        size = tuple(transformed["image"].shape[-2:])
        masks = transformed.get("masks", torch.zeros((0, *size), dtype=torch.uint8))
        masks = torch.as_tensor(masks).to(torch.uint8)
        kept = masks.flatten(1).bool().any(1)
        masks, classes = masks[kept], torch.as_tensor(classes, dtype=torch.int64)[kept]
        boxes = masks_to_boxes(masks).float() + torch.tensor([0.0, 0.0, 1.0, 1.0])  # pixel edges, as COCO's
        return Instances([{"boxes": boxes, "labels": classes, "masks": masks}], [key])

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

    def describe(self, spec: TaskSpec, output, context: PredictContext) -> dict:
        """Instances scoring at least ``REPORT_SCORE`` as COCO results (image_id left to the caller)."""
        from foodmtl.tasks.metrics.coco import detections
        found = output.head.detect(output)[0]
        keep = found["scores"] >= REPORT_SCORE
        found = {k: v[keep] for k, v in found.items()}
        results = detections(found)
        instances = [{"class": spec.classes[r["category_id"] - 1], "category_id": r["category_id"],
                      "score": round(r["score"], 4), "bbox": [round(v, 2) for v in r["bbox"]],
                      "segmentation": {"size": r["segmentation"]["size"],
                                       "counts": r["segmentation"]["counts"].decode()}} for r in results]
        out: dict = {"instances": instances}
        if context.picture is not None and context.pixels is not None:
            from foodmtl.utils.output import atomic_write
            from foodmtl.viz.instances import instance_figure
            picture = instance_figure(context.pixels, found, list(spec.classes))
            atomic_write(context.picture, lambda f: picture.save(f, format="PNG"))
            out["overlay"] = str(context.picture)
        return out


KIND = InstanceSegmentation()
