"""Segmentation decoders over the shared backbone's maps: ``decoder(maps, out_hw)`` -> logits.

foodmtl's own: ``unet`` and ``fpn`` (light, as before smp), ``fcn`` (FCN-8s). From
segmentation_models_pytorch, by smp's names: ``unetplusplus``, ``manet``, ``linknet``,
``pspnet``, ``deeplabv3``, ``deeplabv3plus``, ``pan``, ``upernet``, ``segformer``, ``dpt``,
and smp's U-Net and FPN as ``smp_unet`` / ``smp_fpn`` (the plain names keep meaning what
earlier configs and checkpoints were trained with). docs/segmentation.md compares them.

Importing this package is light (no torch): the names and options can be checked before
the heavy imports; ``build_decoder`` imports the decoder families.
"""
from __future__ import annotations

from typing import Any, Mapping

from foodmtl.config.decoders import OPTIONS, decoder_name, encoder_output_stride, parse_options


def build_decoder(kind: str, channels: list[int], reductions: list[int], num_classes: int,
                  options: Mapping[str, Any] | None = None):
    """A ``kind`` decoder for the backbone's maps (channels and strides, fine to coarse), with
    ``options`` (``model.decoder_options``) checked. Called as ``decoder(maps, out_hw)``, it
    returns (B, num_classes, *out_hw). A backbone the decoder cannot read is a ConfigError
    saying which backbones or decoders work."""
    from foodmtl.models.decoders import fcn, fpn, smp, unet  # noqa: F401  (registration)
    from foodmtl.models.decoders.registry import DECODERS

    name = decoder_name(kind)
    parsed = parse_options(name, options)
    if not channels or len(channels) != len(reductions):
        raise ValueError(f"need one reduction per feature map, got channels {channels}, reductions {reductions}")
    if list(reductions) != sorted(reductions):
        raise ValueError(f"feature maps must be ordered fine to coarse, got reductions {reductions}")
    return DECODERS.get(name)(list(channels), list(reductions), num_classes, parsed)


__all__ = ["OPTIONS", "build_decoder", "decoder_name", "encoder_output_stride", "parse_options"]
