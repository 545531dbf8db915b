"""COCO box and mask AP of the instances task: pycocotools' ``COCOeval``, fed by the evaluation loop.

Each rank keeps its images' ground truth and detections as RLE (a few hundred bytes per mask);
``compute`` gathers them from every rank (``all_gather_object``) and every rank runs COCOeval on
the union, so each image is scored exactly once and all ranks report the same numbers (the
evaluation sampler hands each image to one rank). Images are told apart by their annotation key,
so two ranks never share an id. Ground truth and detections are in the evaluation view (resized
and centre-cropped as the model saw it); AP, AP50 and AP75 are COCOeval's ``stats[0:3]``
(IoU 0.50:0.95, 0.50, 0.75; all areas; 100 detections), as fractions in [0, 1].
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
import torch.distributed as dist
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn

NAMES = {"bbox": ("bbox_AP", "bbox_AP50", "bbox_AP75"), "segm": ("segm_AP", "segm_AP50", "segm_AP75")}


class InstanceMetrics(nn.Module):
    """``update(output, target)`` with an ``InstanceOutput`` and ``Instances`` of labelled images."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self.truth: dict[str, dict] = {}
        self.found: list[tuple[str, dict]] = []

    def update(self, output, target) -> None:
        for key, truth, found in zip(target.keys, target.images, output.head.detect(output)):
            self.truth[key] = image_truth(truth)
            self.found += [(key, d) for d in detections(found)]

    def compute(self) -> dict[str, float]:
        truth, found = self.truth, self.found
        if dist.is_available() and dist.is_initialized():
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (truth, found))
            truth = {k: v for part, _ in gathered for k, v in part.items()}
            found = [d for _, part in gathered for d in part]
        return coco_ap(truth, found, self.num_classes)


def image_truth(target: dict) -> dict:
    """One image's ground truth as COCO annotations (RLE, area, xywh box) and its size; its crowd
    regions (``crowd_masks``) as ``iscrowd: 1`` annotations, which COCOeval ignores together with
    the detections it matches to them (pycocotools ``cocoeval.py``, ``evaluateImg``)."""
    objects = zip(target["masks"].cpu().numpy().astype(np.uint8), target["labels"].cpu().tolist())
    crowds = zip(target.get("crowd_masks", target["masks"][:0]).cpu().numpy().astype(np.uint8),
                 target.get("crowd_labels", target["labels"][:0]).cpu().tolist())
    return {"size": list(target["masks"].shape[1:]),
            "annotations": [{**coco_shape(m, label), "iscrowd": 0} for m, label in objects]
            + [{**coco_shape(m, label), "iscrowd": 1} for m, label in crowds]}


def detections(found: dict) -> list[dict]:
    """COCO results: the mask thresholded at 0.5, the box as the detector placed it (xywh)."""
    masks = (found["masks"] > 0.5).cpu().numpy().astype(np.uint8)
    boxes = found["boxes"].cpu()
    boxes = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).tolist()
    scores, labels = found["scores"].cpu().tolist(), found["labels"].cpu().tolist()
    return [{**coco_shape(m, label), "bbox": box, "score": s} for m, box, label, s in zip(masks, boxes, labels, scores)]


def coco_shape(mask: np.ndarray, label: int) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"segmentation": rle, "bbox": [float(v) for v in mask_utils.toBbox(rle)],
            "area": float(mask_utils.area(rle)), "category_id": int(label) + 1}


def coco_ap(truth: dict[str, dict], found: list[tuple[str, dict]], num_classes: int) -> dict[str, float]:
    """``{bbox,segm}_{AP,AP50,AP75}`` of detections ``(image key, COCO result)`` against per-image ground
    truth ``{key: {"size": [H, W], "annotations": [...]}}`` (``iscrowd: 1``: a crowd region);
    0 when nothing was detected."""
    ids = {key: i for i, key in enumerate(sorted(truth), start=1)}
    images = [{"id": ids[k], "height": v["size"][0], "width": v["size"][1]} for k, v in truth.items()]
    annotations = [{"iscrowd": 0, **a, "id": n, "image_id": ids[k]}
                   for n, (k, a) in enumerate(((k, a) for k, v in truth.items() for a in v["annotations"]), start=1)]
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations,
                  "categories": [{"id": c} for c in range(1, num_classes + 1)]}
    results = [{**d, "image_id": ids[k]} for k, d in found if k in ids]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and its table
        gt.createIndex()
        if not results:
            return {name: 0.0 for names in NAMES.values() for name in names}
        dt = gt.loadRes(results)
        out = {}
        for iou_type, names in NAMES.items():
            evaluator = COCOeval(gt, dt, iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
            # -1 where no ground truth exists: nothing to find, scored 0 rather than an invalid number
            out.update({name: max(float(v), 0.0) for name, v in zip(names, evaluator.stats[:3])})
    return out


__all__ = ["InstanceMetrics", "coco_ap"]
