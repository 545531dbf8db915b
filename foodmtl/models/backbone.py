"""The shared image encoder: any timm model, pooled and (optionally) multi-scale."""
from __future__ import annotations

from dataclasses import dataclass

import timm
from torch import Tensor, nn

from foodmtl.registry import unknown_name_error


MIN_REDUCTION = 4  # finest feature stride handed to a segmentation decoder


@dataclass
class Features:
    pooled: Tensor                    # (B, C) global representation for the heads
    maps: list[Tensor] | None = None  # NCHW feature maps, fine to coarse, for a decoder


def check_backbone_name(name: str) -> None:
    """Raise a KeyError listing close timm names when ``name`` is not a timm model."""
    arch, _tag = timm.models.split_model_name_tag(name)
    if not timm.is_model(arch):
        raise unknown_name_error("timm backbone", arch, timm.list_models())


def create_timm(name: str, pretrained: bool, pretrained_file: str | None, **kwargs) -> nn.Module:
    """timm.create_model with weights from the hub, or from a local file when given."""
    check_backbone_name(name)
    if pretrained_file:
        kwargs["pretrained_cfg_overlay"] = dict(file=str(pretrained_file))
        pretrained = True
    return timm.create_model(name, pretrained=pretrained, **kwargs)


class Backbone(nn.Module):
    """A timm encoder returning pooled features, plus feature maps when ``multiscale``.

    Without a decoder the model is created with ``num_classes=0`` so the pooled
    vector is exactly timm's pre-logits (cls token for ViTs, avg-pool for CNNs).
    With a decoder it is created with ``features_only=True``; the decoder gets
    the maps at stride 4 and coarser (FPN's P2-P5: a stride-2 level would
    quadruple the decoder's cost for little gain), and the pooled vector is the
    average of the last map.
    """

    def __init__(self, name: str, pretrained: bool = False, pretrained_file: str | None = None,
                 multiscale: bool = False, drop_path_rate: float | None = None):
        super().__init__()
        self.multiscale = multiscale
        kwargs = {} if drop_path_rate is None else {"drop_path_rate": drop_path_rate}
        if multiscale:
            self.net = create_timm(name, pretrained, pretrained_file, features_only=True, **kwargs)
            reductions = self.net.feature_info.reduction()
            self.levels = [i for i, r in enumerate(reductions) if r >= MIN_REDUCTION] or [len(reductions) - 1]
            self.feature_channels: list[int] = [self.net.feature_info.channels()[i] for i in self.levels]
            self.feature_reductions: list[int] = [reductions[i] for i in self.levels]
            self.num_features = self.feature_channels[-1]
        else:
            self.net = create_timm(name, pretrained, pretrained_file, num_classes=0, **kwargs)
            self.num_features = self.net.num_features

    def forward(self, images: Tensor) -> Features:
        if not self.multiscale:
            return Features(self.net(images))
        every = self.net(images)
        maps = [to_nchw(every[i], c) for i, c in zip(self.levels, self.feature_channels)]
        return Features(maps[-1].mean(dim=(2, 3)), maps)


def to_nchw(feature: Tensor, channels: int) -> Tensor:
    """Some timm families (e.g. Swin) emit NHWC maps; the decoder wants NCHW."""
    if feature.shape[1] != channels and feature.shape[-1] == channels:
        return feature.permute(0, 3, 1, 2).contiguous()
    return feature


__all__ = ["Backbone", "Features", "check_backbone_name", "create_timm"]
