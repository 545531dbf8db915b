"""Mask R-CNN on the shared backbone: torchvision's FPN, RPN and RoI heads, glued to timm's maps.

The backbone runs once per batch (``MultiTaskModel``); this head turns its maps of stride >= 4
(at most four, as torchvision's ResNet-FPN takes C2-C5) into an FPN pyramid with a max-pooled
extra level, and returns them (``InstanceOutput``) without running the detector. The detector
runs where its targets are: in the kind's loss (RPN and RoI sampling need the boxes) and in the
metric's ``detect``. Images enter with their augmented size (no ``GeneralizedRCNNTransform``:
the data pipeline already normalised and sized them), so boxes and masks are in the model's
input frame. Anchors are ``anchor_scale`` strides wide at each level (torchvision's 32..512 px
at strides 4..64 is ``anchor_scale=8``; small SynthFood pieces want 4), aspect ratios 0.5, 1, 2.
"""
from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads, paste_masks_in_image
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from foodmtl.data.instance_targets import Instances

# torchvision's loss names -> ours (the weighting's task names with separate_losses)
COMPONENTS = {"loss_objectness": "rpn_objectness", "loss_rpn_box_reg": "rpn_box",
              "loss_classifier": "classifier", "loss_box_reg": "box", "loss_mask": "mask"}
MAX_LEVELS = 4
EVAL_SEED = 0  # seeds the anchor and RoI sampling of the eval loss (``losses`` in eval mode)


@dataclass
class InstanceOutput:
    """FPN maps of a batch and the head that detects on them. Like a batched tensor it can be
    indexed by a labelled mask (or an image index: a batch of one); ``float`` is the identity
    (torchvision's heads cast under autocast themselves)."""

    features: "OrderedDict[str, Tensor]"
    image_size: tuple[int, int]
    head: "InstanceHead"

    def __len__(self) -> int:
        return len(next(iter(self.features.values())))

    def __getitem__(self, index) -> "InstanceOutput":
        index = slice(index, index + 1) if isinstance(index, int) else index
        return InstanceOutput(OrderedDict((k, v[index]) for k, v in self.features.items()), self.image_size, self.head)

    def float(self) -> "InstanceOutput":
        return self


class InstanceHead(nn.Module):
    def __init__(self, channels: list[int], reductions: list[int], num_classes: int, options: dict[str, Any]):
        super().__init__()
        self.levels = [i for i, r in enumerate(reductions) if r >= 4][-MAX_LEVELS:]
        width = options["fpn_channels"]
        self.fpn = FeaturePyramidNetwork([channels[i] for i in self.levels], width, extra_blocks=LastLevelMaxPool())
        names = [str(k) for k in range(len(self.levels))]
        strides = [reductions[i] for i in self.levels] + [2 * reductions[self.levels[-1]]]
        anchors = AnchorGenerator(tuple((options["anchor_scale"] * s,) for s in strides), ((0.5, 1.0, 2.0),) * len(strides))
        proposals = options["proposals"]
        self.rpn = RegionProposalNetwork(anchors, RPNHead(width, anchors.num_anchors_per_location()[0]),
                                         fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256,
                                         positive_fraction=0.5, nms_thresh=0.7,
                                         pre_nms_top_n={"training": 2 * proposals, "testing": proposals},
                                         post_nms_top_n={"training": 2 * proposals, "testing": proposals})
        dim, layers = options["box_head_dim"], options["mask_head_layers"]
        self.roi_heads = RoIHeads(
            MultiScaleRoIAlign(names, 7, 2), TwoMLPHead(width * 7 * 7, dim), FastRCNNPredictor(dim, num_classes + 1),
            fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=options["rois_per_image"],
            positive_fraction=0.25, bbox_reg_weights=None, score_thresh=options["score_threshold"],
            nms_thresh=0.5, detections_per_img=options["detections_per_image"],
            mask_roi_pool=MultiScaleRoIAlign(names, 14, 2), mask_head=MaskRCNNHeads(width, [width] * layers, 1),
            mask_predictor=MaskRCNNPredictor(width, width, num_classes + 1))

    def forward(self, maps: list[Tensor], image_size) -> InstanceOutput:
        features = self.fpn(OrderedDict((str(k), maps[i]) for k, i in enumerate(self.levels)))
        return InstanceOutput(features, tuple(int(s) for s in image_size), self)

    def losses(self, output: InstanceOutput, targets: Instances) -> dict[str, Tensor]:
        """The five Mask R-CNN losses (``COMPONENTS`` names) over the labelled images; exactly 0,
        with a zero gradient into every parameter it would reach, when none is labelled. In eval
        mode (the eval split's loss) anchors and RoIs are sampled as in training, but by the RNG
        seeded ``EVAL_SEED`` (and left as it was): the same images give the same losses."""
        keep = targets.labelled()
        if not bool(keep.any()):
            zero = self.zero_loss(output)
            return {name: zero for name in COMPONENTS.values()}
        output, picked = output[keep.to(self.device)], targets[keep]
        boxed = [{"boxes": t["boxes"], "labels": t["labels"] + 1, "masks": t["masks"]} for t in picked.images]
        images = self.image_list(output)
        with seeded(self.device, EVAL_SEED) if not self.training else nullcontext(), training(self):
            proposals, rpn_losses = self.rpn(images, output.features, boxed)
            _, roi_losses = self.roi_heads(output.features, proposals, images.image_sizes, boxed)
        return {COMPONENTS[k]: v for k, v in {**rpn_losses, **roi_losses}.items()}

    def image_losses(self, output: InstanceOutput, targets: Instances) -> Tensor:
        """(N,) the loss (the five summed) of each of the N labelled images, computed alone by ``losses``
        with the head in eval mode (seeded): a function of the model and the image, whatever batch or
        rank it came in (torchvision averages the sampled anchors and RoIs over a batch)."""
        labelled = targets.labelled().tolist()
        losses = [sum(self.losses(output[i], targets[i]).values()) for i, has in enumerate(labelled) if has]
        return torch.stack(losses) if losses else torch.zeros(0, device=self.device)

    @torch.no_grad()
    def detect(self, output: InstanceOutput) -> list[dict[str, Tensor]]:
        """Per image ``{"boxes" (N, 4) xyxy, "labels" (N,) class index, "scores" (N,), "masks" (N, H, W)
        probabilities}``, at most ``detections_per_image``, best first."""
        images = self.image_list(output)
        with training(self, False):
            proposals, _ = self.rpn(images, output.features)
            detections, _ = self.roi_heads(output.features, proposals, images.image_sizes)
        for d in detections:
            d["masks"] = paste_masks_in_image(d["masks"], d["boxes"], output.image_size)[:, 0]
            d["labels"] = d["labels"] - 1
        return detections

    def zero_loss(self, output: InstanceOutput) -> Tensor:
        maps = sum(m.float().sum() for m in output.features.values())
        return (maps + sum(p.sum() for p in self.parameters())) * 0.0

    def image_list(self, output: InstanceOutput) -> ImageList:
        """The sizes are all torchvision reads from the images here (anchors, RoI scales); no pixels needed."""
        first = next(iter(output.features.values()))
        return ImageList(first.new_empty((len(output), 0, *output.image_size)), [output.image_size] * len(output))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


@contextmanager
def seeded(device: torch.device, seed: int):
    """The default generators of the CPU and ``device`` seeded with ``seed`` inside, restored after:
    torchvision's ``BalancedPositiveNegativeSampler`` draws with ``torch.randperm`` on the boxes' device."""
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


@contextmanager
def training(head: InstanceHead, mode: bool = True):
    """RPN and RoI heads in ``mode`` (they sample and return losses only in training) and back."""
    before = head.rpn.training, head.roi_heads.training
    head.rpn.train(mode)
    head.roi_heads.train(mode)
    try:
        yield
    finally:
        head.rpn.train(before[0])
        head.roi_heads.train(before[1])
