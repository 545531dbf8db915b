"""The shared image encoder: any timm model, pooled and (optionally) multi-scale."""
from __future__ import annotations

from dataclasses import dataclass

import timm
from torch import Tensor, nn

from foodmtl.errors import ConfigError
from foodmtl.models.pretrained import hub_or_cache, local_weights
from foodmtl.config.names import timm_name
from foodmtl.utils.registry import unknown_name_error

# Checked with timm 1.0.31 (features_only=True, output_stride=8 and 16); Swin, ViT, FastViT,
# EfficientViT, MetaFormer, PVT, DenseNet, VGG and HRNet refuse output_stride.
DILATABLE = ("resnet18", "resnet50", "resnet10t", "regnetx_002", "efficientnet_b0", "mobilenetv3_small_100",
             "mobilenetv4_conv_small", "mixnet_s", "convnext_atto")


@dataclass
class Features:
    pooled: Tensor                    # (B, C) global representation for the heads
    maps: list[Tensor] | None = None  # NCHW feature maps, fine to coarse, for a decoder


def check_backbone_name(name: str) -> str:
    """``name`` as timm spells it (smp's ``tu-<name>`` too); UnknownNameError listing close timm
    names (or the architecture's pretrained tags) when timm has no such model."""
    name = timm_name(name)
    arch, tag = timm.models.split_model_name_tag(name)
    if not timm.is_model(arch):
        raise unknown_name_error("timm backbone", arch, timm.list_models())
    tagged = timm.list_pretrained(f"{arch}.*")
    if tag and name not in tagged:
        raise unknown_name_error(f"pretrained tag of {arch}", name, tagged)
    return name


def create_timm(name: str, pretrained: bool, pretrained_file: str | None, **kwargs) -> nn.Module:
    """timm.create_model with weights from a local file when given, else (``pretrained``) from the
    hub or its local cache, failing in seconds when neither has them (foodmtl/models/pretrained.py)."""
    name = check_backbone_name(name)
    if pretrained_file:
        overlay = dict(file=local_weights(pretrained_file))
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    if not pretrained:
        return timm.create_model(name, **kwargs)
    with hub_or_cache(name):
        return timm.create_model(name, pretrained=True, **kwargs)


class Backbone(nn.Module):
    """A timm encoder returning pooled features, plus feature maps when ``multiscale``.

    Without a decoder the model is created with ``num_classes=0`` so the pooled
    vector is exactly timm's pre-logits (cls token for ViTs, avg-pool for CNNs).
    With a decoder it is created with ``features_only=True`` and hands the decoder
    every map timm gives (stride 2 included: smp's U-Net reads it, and it is computed
    anyway); each decoder picks the levels it reads. The pooled vector is the average
    of the last map. ``output_stride`` (8 or 16, asked for by DeepLab-style decoders)
    dilates the last stages instead of striding them, timm's ``output_stride``; the
    weights are the same, so a pretrained file still fits.
    """

    def __init__(self, name: str, pretrained: bool = False, pretrained_file: str | None = None,
                 multiscale: bool = False, drop_path_rate: float | None = None, output_stride: int | None = None):
        super().__init__()
        self.multiscale = multiscale
        kwargs = {} if drop_path_rate is None else {"drop_path_rate": drop_path_rate}
        if multiscale:
            self.net = create_features(name, pretrained, pretrained_file, output_stride, **kwargs)
            self.feature_channels: list[int] = self.net.feature_info.channels()
            self.feature_reductions: list[int] = self.net.feature_info.reduction()
            self.num_features = self.feature_channels[-1]
        else:
            if output_stride:
                raise ValueError("output_stride dilates the maps a decoder reads; it needs multiscale=True")
            self.net = create_timm(name, pretrained, pretrained_file, num_classes=0, **kwargs)
            self.num_features = self.net.num_features

    def forward(self, images: Tensor) -> Features:
        if not self.multiscale:
            return Features(self.net(images))
        maps = [to_nchw(m, c) for m, c in zip(self.net(images), self.feature_channels)]
        return Features(maps[-1].mean(dim=(2, 3)), maps)


def create_features(name: str, pretrained: bool, pretrained_file: str | None, output_stride: int | None,
                    **kwargs) -> nn.Module:
    """timm ``features_only`` model, dilated to ``output_stride`` when given; a backbone timm cannot
    dilate is a ConfigError naming ones it can."""
    if not output_stride:
        return create_timm(name, pretrained, pretrained_file, features_only=True, **kwargs)
    try:
        net = create_timm(name, pretrained, pretrained_file, features_only=True, output_stride=output_stride,
                          **kwargs)
    except (TypeError, AssertionError, ValueError):  # timm's ways of refusing output_stride
        net = None
    if net is None or max(net.feature_info.reduction()) != output_stride:
        raise ConfigError(f"model.backbone={name} cannot be dilated to output stride {output_stride} (asked for by "
                          "model.decoder_options.encoder_output_stride of the decoder): timm has no output_stride "
                          f"for it. Backbones that can: {', '.join(DILATABLE)} (their families: resnet*, resnext*, "
                          "regnet*, efficientnet*, mobilenetv3/v4*, mixnet*, convnext*); or pick a decoder "
                          "without dilation (unet, fpn, fcn, smp_unet, upernet, segformer; pan with "
                          "encoder_output_stride=32)")
    return net


def to_nchw(feature: Tensor, channels: int) -> Tensor:
    """Some timm families (e.g. Swin) emit NHWC maps; the decoder wants NCHW."""
    if feature.shape[1] != channels and feature.shape[-1] == channels:
        return feature.permute(0, 3, 1, 2).contiguous()
    return feature


__all__ = ["Backbone", "Features", "check_backbone_name", "create_timm"]
