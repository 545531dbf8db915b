"""segmentation_models_pytorch's decoders, fed by foodmtl's shared timm backbone.

For each architecture this builds the decoder and segmentation head that smp 0.6.0's model
class builds (``segmentation_models_pytorch/decoders/<arch>/model.py``: same classes, same
arguments, same initialisation), but no smp encoder: the decoder reads the maps of the
backbone forward that the classification heads also read, so the encoder runs once per batch.

smp's encoders hand a decoder ``[input, stride 2, 4, 8, 16, 32][:depth + 1]``; the maps are
arranged the same way. As smp's ``TimmUniversalEncoder`` does, a backbone whose first map is at
stride 4 (ConvNeXt, Swin, ...) gets a 0-channel stand-in for the stride-2 map, and the input
slot is a 0-channel tensor too (every decoder reads only its size). Dilated backbones
(``encoder_output_stride``: DeepLabV3/V3+, PAN) are created that way by the Backbone, which
asks ``encoder_output_stride()`` before building timm's model.

smp's decoders need each map at exactly input/stride (most upsample by fixed factors), so the
maps are zero-padded at the bottom and right to the sizes of an input padded up to a multiple
of the deepest stride, and the logits are cropped back: what padding the image would do,
without a second encoder pass. DPT reads the backbone's last maps as they are (no prefix
tokens: ``readout="ignore"``), whatever their strides, as long as each is a power-of-two
factor away from the 1/4, 1/8, ... scale DPT reassembles it to.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable

import torch.nn.functional as F
from segmentation_models_pytorch.base import SegmentationHead
from segmentation_models_pytorch.base import initialization as smp_init
from segmentation_models_pytorch.decoders.deeplabv3.decoder import DeepLabV3Decoder, DeepLabV3PlusDecoder
from segmentation_models_pytorch.decoders.dpt.decoder import DPTDecoder, DPTSegmentationHead
from segmentation_models_pytorch.decoders.fpn.decoder import FPNDecoder
from segmentation_models_pytorch.decoders.linknet.decoder import LinknetDecoder
from segmentation_models_pytorch.decoders.manet.decoder import MAnetDecoder
from segmentation_models_pytorch.decoders.pan.decoder import PANDecoder
from segmentation_models_pytorch.decoders.pspnet.decoder import PSPDecoder
from segmentation_models_pytorch.decoders.segformer.decoder import SegformerDecoder
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from segmentation_models_pytorch.decoders.unetplusplus.decoder import UnetPlusPlusDecoder
from segmentation_models_pytorch.decoders.upernet.decoder import UPerNetDecoder
from torch import Tensor, nn

from foodmtl.errors import ConfigError
from foodmtl.config import decoders as opt
from foodmtl.models.decoders.common import fit
from foodmtl.models.decoders.registry import DECODERS

UNET_CHANNELS = (256, 128, 64, 32, 16)   # smp's default decoder_channels for Unet, Unet++ and MAnet
DPT_CHANNELS = (256, 512, 1024, 1024)    # smp's default decoder_intermediate_channels
EQUAL_STRIDE_DECODERS = "unet, fpn or dpt"
# PAN's feature pyramid attention max-pools its deepest map 2x three times and adds the
# upsampled results back, so that map must be a whole multiple of 8 cells.
DEEPEST_CELLS = {"pan": 8}

Parts = tuple[nn.Module, nn.Module]  # (decoder, segmentation head)


class SmpDecoder(nn.Module):
    """``decoder(maps, out_hw)`` over smp's decoder + head; ``levels``: the backbone map of each
    smp stage (None: a 0-channel stand-in), ``strides``: each stage's stride."""

    def __init__(self, parts: Parts, levels: list[int | None], strides: list[int], pad_to: int | None = None):
        super().__init__()
        self.decoder, self.segmentation_head = parts
        self.levels, self.strides = levels, strides
        self.pad_to = pad_to or max(strides)
        smp_init.initialize_decoder(self.decoder)
        smp_init.initialize_head(self.segmentation_head)

    def forward(self, maps: list[Tensor], out_hw: tuple[int, int]) -> Tensor:
        padded = tuple(math.ceil(side / self.pad_to) * self.pad_to for side in out_hw)
        stages = [self.stage(maps, level, padded, stride) for level, stride in zip(self.levels, self.strides)]
        logits = self.segmentation_head(self.decode(stages, maps[-1].new_empty(len(maps[-1]), 0, *padded)))
        if logits.shape[-2:] != padded:
            logits = F.interpolate(logits, size=padded, mode="bilinear", align_corners=False)
        return fit(logits, out_hw)

    @staticmethod
    def stage(maps: list[Tensor], level: int | None, padded: tuple[int, int], stride: int) -> Tensor:
        size = (padded[0] // stride, padded[1] // stride)
        if level is None:
            return maps[-1].new_empty(len(maps[-1]), 0, *size)
        return fit(maps[level], size)

    def decode(self, stages: list[Tensor], input_slot: Tensor) -> Tensor:
        return self.decoder([input_slot, *stages])


class SmpDPT(SmpDecoder):
    """DPT takes the maps without the input slot, plus prefix tokens (none here)."""

    def decode(self, stages: list[Tensor], input_slot: Tensor) -> Tensor:
        return self.decoder(stages, [None] * len(stages))


def hierarchical_levels(name: str, reductions: list[int], depth: int,
                        output_stride: int | None) -> tuple[list[int | None], list[int]]:
    """smp's stages 1..depth (strides 2, 4, ...; capped at a dilated backbone's output stride)
    as backbone map indices, None where a stride-4-first backbone has no stride-2 map."""
    usable = [(i, r) for i, r in enumerate(reductions) if r >= 2]  # a VGG's stride-1 map is the input slot
    strides = [r for _, r in usable]
    cap = output_stride or 32
    if output_stride and max(reductions) != output_stride:
        raise ValueError(f"decoder '{name}' needs a backbone dilated to output stride {output_stride} but its maps "
                         f"end at stride {max(reductions)}: create the Backbone with "
                         "output_stride=encoder_output_stride(decoder, options)")
    for first in (1, 2):  # CNN-like (a stride-2 map first) or transformer-like (stride 4 first)
        if strides and strides == [min(2 ** (k + first), cap) for k in range(len(strides))]:
            break
    else:
        raise ConfigError(f"decoder '{name}' (segmentation_models_pytorch) needs a hierarchical backbone with maps at "
                          f"strides 2, 4, 8, 16, 32 (ResNet, EfficientNet, ...) or 4, 8, 16, 32 (ConvNeXt, Swin, ...); "
                          f"this backbone's maps are at strides {list(reductions)}. "
                          f"For equal-stride maps (plain ViTs) use {EQUAL_STRIDE_DECODERS}")
    levels: list[int | None] = [i for i, _ in usable] if first == 1 else [None, *(i for i, _ in usable)]
    if len(levels) < depth:
        raise ConfigError(f"model.decoder_options.encoder_depth={depth}: this backbone has {len(levels)} stages "
                          f"(maps at strides {list(reductions)}); choose encoder_depth <= {len(levels)}")
    return levels[:depth], [min(2 ** (k + 1), cap) for k in range(depth)]


def needs_stride_two(name: str, levels: list[int | None]) -> None:
    """Unet++ builds convolutions on every skip, so smp's 0-channel stride-2 stand-in breaks it."""
    if None in levels:
        raise ConfigError(f"decoder '{name}' needs a backbone with a stride-2 map (ResNet, EfficientNet, "
                          "MobileNet, RegNet, ...); this one starts at stride 4. smp_unet, manet, linknet, "
                          "upernet and segformer read such backbones")


# --- one builder per architecture, as smp's model classes wire them: (channels, options, classes) -> parts ---

def unet(ch: list[int], o: opt.SmpUnetOptions, k: int) -> Parts:
    widths = o.decoder_channels or list(UNET_CHANNELS[:o.encoder_depth])
    return (UnetDecoder(ch, widths, n_blocks=o.encoder_depth, use_norm=o.decoder_use_norm,
                        attention_type=o.decoder_attention_type, interpolation_mode=o.decoder_interpolation),
            SegmentationHead(widths[-1], k, kernel_size=3))


def unetplusplus(ch: list[int], o: opt.UnetPlusPlusOptions, k: int) -> Parts:
    widths = o.decoder_channels or list(UNET_CHANNELS[:o.encoder_depth])
    return (UnetPlusPlusDecoder(ch, widths, n_blocks=o.encoder_depth, use_norm=o.decoder_use_norm,
                                attention_type=o.decoder_attention_type, interpolation_mode=o.decoder_interpolation),
            SegmentationHead(widths[-1], k, kernel_size=3))


def manet(ch: list[int], o: opt.MAnetOptions, k: int) -> Parts:
    widths = o.decoder_channels or list(UNET_CHANNELS[:o.encoder_depth])
    return (MAnetDecoder(ch, widths, n_blocks=o.encoder_depth, use_norm=o.decoder_use_norm,
                         pab_channels=o.decoder_pab_channels, interpolation_mode=o.decoder_interpolation),
            SegmentationHead(widths[-1], k, kernel_size=3))


def linknet(ch: list[int], o: opt.LinknetOptions, k: int) -> Parts:
    return (LinknetDecoder(ch, n_blocks=o.encoder_depth, prefinal_channels=32, use_norm=o.decoder_use_norm),
            SegmentationHead(32, k, kernel_size=1))


def fpn(ch: list[int], o: opt.SmpFPNOptions, k: int) -> Parts:
    decoder = FPNDecoder(ch, encoder_depth=o.encoder_depth, pyramid_channels=o.decoder_pyramid_channels,
                         segmentation_channels=o.decoder_segmentation_channels, dropout=o.decoder_dropout,
                         merge_policy=o.decoder_merge_policy, interpolation_mode=o.decoder_interpolation)
    return decoder, SegmentationHead(decoder.out_channels, k, kernel_size=1, upsampling=4)


def pspnet(ch: list[int], o: opt.PSPNetOptions, k: int) -> Parts:
    return (PSPDecoder(ch, use_norm=o.decoder_use_norm, out_channels=o.psp_out_channels, dropout=o.psp_dropout),
            SegmentationHead(o.psp_out_channels, k, kernel_size=3, upsampling=8))


def deeplabv3(ch: list[int], o: opt.DeepLabV3Options, k: int) -> Parts:
    scale = 2 ** o.encoder_depth if o.encoder_depth <= 3 else o.encoder_output_stride
    return (DeepLabV3Decoder(ch[-1], o.decoder_channels, o.decoder_atrous_rates, o.decoder_aspp_separable,
                             o.decoder_aspp_dropout),
            SegmentationHead(o.decoder_channels, k, kernel_size=1, upsampling=scale))


def deeplabv3plus(ch: list[int], o: opt.DeepLabV3PlusOptions, k: int) -> Parts:
    return (DeepLabV3PlusDecoder(ch, o.encoder_depth, o.decoder_channels, o.decoder_atrous_rates,
                                 o.encoder_output_stride, o.decoder_aspp_separable, o.decoder_aspp_dropout),
            SegmentationHead(o.decoder_channels, k, kernel_size=1, upsampling=4))


def pan(ch: list[int], o: opt.PANOptions, k: int) -> Parts:
    return (PANDecoder(ch, o.encoder_depth, o.decoder_channels, interpolation_mode=o.decoder_interpolation),
            SegmentationHead(o.decoder_channels, k, kernel_size=3, upsampling=4))


def upernet(ch: list[int], o: opt.UPerNetOptions, k: int) -> Parts:
    return (UPerNetDecoder(ch, o.encoder_depth, o.decoder_channels, use_norm=o.decoder_use_norm),
            SegmentationHead(o.decoder_channels, k, kernel_size=1, upsampling=4))


def segformer(ch: list[int], o: opt.SegformerOptions, k: int) -> Parts:
    return (SegformerDecoder(ch, o.encoder_depth, o.decoder_segmentation_channels),
            SegmentationHead(o.decoder_segmentation_channels, k, kernel_size=1, upsampling=4))


ARCHS: dict[str, Callable[..., Parts]] = {
    "smp_unet": unet, "unetplusplus": unetplusplus, "manet": manet, "linknet": linknet, "smp_fpn": fpn,
    "pspnet": pspnet, "deeplabv3": deeplabv3, "deeplabv3plus": deeplabv3plus, "pan": pan, "upernet": upernet,
    "segformer": segformer,
}


def build_hierarchical(name: str, channels: list[int], reductions: list[int], num_classes: int,
                       options: opt.DecoderOptions) -> SmpDecoder:
    levels, strides = hierarchical_levels(name, reductions, options.encoder_depth, opt.dilation(options))
    if name == "unetplusplus":
        needs_stride_two(name, levels)
    encoder_channels = [0] + [0 if i is None else channels[i] for i in levels]
    return SmpDecoder(ARCHS[name](encoder_channels, options, num_classes), levels, strides,
                      pad_to=max(strides) * DEEPEST_CELLS.get(name, 1))


def build_dpt(channels: list[int], reductions: list[int], num_classes: int, o: opt.DPTOptions) -> SmpDPT:
    usable = [i for i, r in enumerate(reductions) if r >= 2]
    widths = o.decoder_intermediate_channels
    depth = o.encoder_depth or (len(widths) if widths else min(4, len(usable)))
    if depth > len(usable):
        raise ConfigError(f"decoder 'dpt' would read {depth} maps (model.decoder_options.encoder_depth or the length "
                          f"of decoder_intermediate_channels); this backbone has {len(usable)}")
    levels = usable[-depth:]
    strides = [reductions[i] for i in levels]
    for k, stride in enumerate(strides):
        factor = stride / 2 ** (k + 2)
        if math.log2(factor) != round(math.log2(factor)):
            raise ConfigError(f"decoder 'dpt' reassembles its {depth} maps to strides 4, 8, ... by power-of-two "
                              f"factors; this backbone's last maps are at strides {strides}")
    widths = widths or list(DPT_CHANNELS[-depth:])
    decoder = DPTDecoder([channels[i] for i in levels], strides, encoder_has_prefix_tokens=False, readout="ignore",
                         intermediate_channels=widths, fusion_channels=o.decoder_fusion_channels)
    head = DPTSegmentationHead(o.decoder_fusion_channels, num_classes, kernel_size=3, upsampling=2)
    # pad so that the deepest scale DPT reassembles to (stride 2 ** (depth + 1)) is whole too
    return SmpDPT((decoder, head), levels, strides, pad_to=max(*strides, 2 ** (depth + 1)))


for _name in ARCHS:
    DECODERS.register(_name)(partial(build_hierarchical, _name))
DECODERS.register("dpt")(build_dpt)
