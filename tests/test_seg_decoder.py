"""Segmentation decoders on CNN, ConvNeXt and transformer backbones: shapes and gradient flow."""
from functools import cache

import pytest
import torch

from foodmtl.config import ModelConfig
from foodmtl.models.backbone import Backbone
from foodmtl.models.multitask import build_model
from foodmtl.models.seg_decoder import build_decoder
from foodmtl.tasks import TaskSpec

NUM_CLASSES = 5
# (timm name, input (H, W), batch): odd CNN sizes exercise rounding; the transformers need 224.
CASES = [
    ("resnet18", (72, 56), 2),
    ("mobilenetv3_small_100", (72, 56), 2),
    ("convnext_atto", (64, 96), 2),
    ("swin_tiny_patch4_window7_224", (224, 224), 1),  # NHWC maps at strides 4..32
    ("vit_tiny_patch16_224", (224, 224), 1),          # every map at stride 16
]


@cache
def backbone(name: str) -> Backbone:
    torch.manual_seed(0)
    return Backbone(name, multiscale=True)


@pytest.mark.parametrize("kind", ["unet", "fpn"])
@pytest.mark.parametrize("name,hw,batch", CASES, ids=[c[0] for c in CASES])
def test_logits_have_input_size_and_gradients_reach_backbone(name, hw, batch, kind):
    encoder = backbone(name)
    decoder = build_decoder(kind, encoder.feature_channels, encoder.feature_reductions, NUM_CLASSES, width=16)
    encoder.zero_grad(set_to_none=True)
    images = torch.randn(batch, 3, *hw)

    maps = encoder(images).maps
    for m in maps:
        m.retain_grad()
    logits = decoder(maps, images.shape[-2:])

    assert logits.shape == (batch, NUM_CLASSES, *hw)
    logits.square().mean().backward()
    # Every level is used, and the gradient gets through the whole backbone to its stem.
    # (Not "every parameter": timm's stochastic depth, on by default for Swin, drops whole blocks.)
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in maps)
    stem = next(encoder.parameters())
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    assert all(p.grad is not None for p in decoder.parameters())


def test_multitask_model_wires_the_configured_decoder():
    tasks = [TaskSpec("dish", "multiclass", ("a", "b")), TaskSpec("segmentation", "segmentation", ("bg", "x", "y"))]
    model = build_model(ModelConfig(backbone="resnet18", decoder="fpn"), tasks)
    out = model(torch.randn(2, 3, 40, 48))
    assert type(model.decoder).__name__ == "FPNDecoder"
    assert out.logits["segmentation"].shape == (2, 3, 40, 48)
    assert out.logits["dish"].shape == (2, 2)


def test_width_sets_decoder_size():
    small = build_decoder("unet", [64, 128], [4, 8], 3, width=8)
    large = build_decoder("unet", [64, 128], [4, 8], 3, width=32)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in large.parameters())
    assert small.classifier.in_channels == 8


def test_unknown_kind_lists_valid_names():
    with pytest.raises(KeyError, match="fpn"):
        build_decoder("fnp", [8], [4], 3)
    with pytest.raises(KeyError, match="unet"):
        build_decoder("deeplab", [8], [4], 3)


@pytest.mark.parametrize("channels,reductions", [([8, 16], [4]), ([8, 16], [8, 4]), ([], [])])
def test_inconsistent_feature_info_is_rejected(channels, reductions):
    with pytest.raises(ValueError):
        build_decoder("fpn", channels, reductions, 3)
