"""Segmentation decoders on the shared backbone: one encoder pass, shapes, gradients, smp parity,
earlier checkpoints, option checks and the errors for backbones a decoder cannot read."""
from functools import cache
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from foodmtl.config import ModelConfig, load_config

from foodmtl.errors import ConfigError
from foodmtl.models.backbone import DILATABLE, Backbone
from foodmtl.models.decoders import OPTIONS, build_decoder, encoder_output_stride
from foodmtl.models.decoders.fcn import bilinear_upsampler
from foodmtl.models.decoders.registry import DECODERS
from foodmtl.models.multitask import MultiTaskModel, build_model
from foodmtl.tasks import TaskSpec

NUM_CLASSES = 5
LEGACY = Path(__file__).parent / "data" / "legacy_decoders.pt"
# (timm name, input (H, W)): sizes that are no multiple of 32 exercise the padding.
CNNS = [("resnet18", (72, 56)), ("convnext_atto", (64, 96))]
STRIDE_TWO_ONLY = {"unetplusplus"}  # smp's Unet++ cannot take the stride-2 stand-in of a stride-4-first backbone
# Narrow decoders keep the tests fast; smp's default widths are exercised by the parity tests.
NARROW = {
    "unet": {"width": 16}, "fpn": {"width": 16}, "fcn": {},
    "smp_unet": {"decoder_channels": [32, 16, 16, 8, 8]}, "unetplusplus": {"decoder_channels": [32, 16, 16, 8, 8]},
    "manet": {"decoder_channels": [32, 16, 16, 8, 8], "decoder_pab_channels": 8}, "linknet": {},
    "smp_fpn": {"decoder_pyramid_channels": 32, "decoder_segmentation_channels": 32},
    "pspnet": {"psp_out_channels": 32}, "deeplabv3": {"decoder_channels": 32}, "deeplabv3plus": {"decoder_channels": 32},
    "pan": {"decoder_channels": 16}, "upernet": {"decoder_channels": 32}, "segformer": {"decoder_segmentation_channels": 32},
    "dpt": {"decoder_intermediate_channels": [16, 32, 64], "decoder_fusion_channels": 16},
}


@cache
def backbone(name: str, output_stride: int | None = None) -> Backbone:
    torch.manual_seed(0)
    return Backbone(name, multiscale=True, output_stride=output_stride)


def segmentation_model(name: str, decoder: str, options: dict | None = None) -> MultiTaskModel:
    """What build_model does for a dense task, without the config."""
    encoder = backbone(name, encoder_output_stride(decoder, options))
    head = build_decoder(decoder, encoder.feature_channels, encoder.feature_reductions, NUM_CLASSES, options)
    tasks = [TaskSpec("dish", "multiclass", ("a", "b", "c")),
             TaskSpec("segmentation", "segmentation", tuple("bcdef"))]
    return MultiTaskModel(encoder, tasks, decoder=head)


def cases():
    for name, hw in CNNS:
        for decoder in sorted(OPTIONS):
            if not (name == "convnext_atto" and decoder in STRIDE_TWO_ONLY):
                yield pytest.param(name, hw, decoder, id=f"{name}-{decoder}")


def test_every_decoder_name_is_registered_and_has_options():
    from foodmtl.models.decoders import fcn, fpn, smp as smp_family, unet  # noqa: F401
    assert DECODERS.names() == sorted(OPTIONS)
    smp_archs = {"unetplusplus", "manet", "linknet", "pspnet", "deeplabv3", "deeplabv3plus", "pan", "upernet",
                 "segformer", "dpt"}  # smp.create_model's names; its unet and fpn are smp_unet / smp_fpn
    assert smp_archs | {"unet", "fpn"} == set(smp.MODEL_ARCHITECTURES_MAPPING)
    assert smp_archs | {"smp_unet", "smp_fpn", "unet", "fpn", "fcn"} == set(OPTIONS)


@pytest.mark.parametrize("name,hw,decoder", list(cases()))
def test_one_backbone_pass_feeds_heads_and_decoder(name, hw, decoder):
    model = segmentation_model(name, decoder, NARROW[decoder]).train()
    calls = []
    hook = model.backbone.net.register_forward_hook(lambda *_: calls.append(1))
    model.zero_grad(set_to_none=True)
    images = torch.randn(2, 3, *hw)
    try:
        out = model(images)
    finally:
        hook.remove()

    assert len(calls) == 1
    assert out.logits["segmentation"].shape == (2, NUM_CLASSES, *hw)
    assert out.logits["dish"].shape == (2, 3)
    out.logits["segmentation"].square().mean().backward()
    stem = next(model.backbone.parameters())
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.decoder.parameters())


@pytest.mark.parametrize("name,decoders", [
    ("swin_tiny_patch4_window7_224", ["unet", "upernet", "segformer"]),  # NHWC maps at strides 4..32
    ("vit_tiny_patch16_224", ["unet", "fpn", "dpt"]),                  # every map at stride 16
])
def test_transformer_backbones(name, decoders):
    images = torch.randn(1, 3, 224, 224)  # batch 1: eval mode, for the BatchNorm after global pooling
    for decoder in decoders:
        model = segmentation_model(name, decoder, NARROW[decoder]).eval()
        logits = model(images).logits["segmentation"]
        assert logits.shape == (1, NUM_CLASSES, 224, 224), decoder
        logits.mean().backward()
        assert all(p.grad is not None for p in model.decoder.parameters()), decoder


@pytest.mark.parametrize("decoder", ["fcn", "smp_unet", "deeplabv3plus", "upernet", "segformer"])
def test_equal_stride_backbone_is_refused_with_what_works(decoder):
    encoder = backbone("vit_tiny_patch16_224")
    with pytest.raises(ConfigError, match=r"strides \[16, 16, 16\].*(unet, fpn or dpt|unet, fpn or dpt)"):
        build_decoder(decoder, encoder.feature_channels, encoder.feature_reductions, NUM_CLASSES)


def test_unetplusplus_needs_a_stride_two_map():
    encoder = backbone("convnext_atto")
    with pytest.raises(ConfigError, match="stride-2 map.*smp_unet"):
        build_decoder("unetplusplus", encoder.feature_channels, encoder.feature_reductions, NUM_CLASSES)


def test_backbone_that_cannot_be_dilated_is_refused_with_ones_that_can():
    with pytest.raises(ConfigError, match="swin_tiny_patch4_window7_224 cannot be dilated to output stride 16.*"
                                          "resnet18"):
        Backbone("swin_tiny_patch4_window7_224", multiscale=True, output_stride=16)
    assert "convnext_atto" in DILATABLE


def test_dilated_backbone_keeps_its_weights_and_ends_at_the_stride():
    plain, dilated = backbone("resnet18"), backbone("resnet18", 8)
    assert dilated.feature_reductions == [2, 4, 8, 8, 8]
    assert plain.state_dict().keys() == dilated.state_dict().keys()
    maps = dilated(torch.randn(1, 3, 64, 64)).maps
    assert [m.shape[-1] for m in maps] == [32, 16, 8, 8, 8]


def test_decoder_on_an_undilated_backbone_says_how_to_build_it():
    encoder = backbone("resnet18")
    with pytest.raises(ValueError, match="output_stride=encoder_output_stride"):
        build_decoder("deeplabv3plus", encoder.feature_channels, encoder.feature_reductions, NUM_CLASSES)


# --- the smp decoders compute what smp's own models compute --------------------------------------

@pytest.mark.parametrize("decoder,arch,kwargs", [
    ("smp_unet", smp.Unet, {}),
    ("smp_fpn", smp.FPN, {}),
    ("deeplabv3plus", smp.DeepLabV3Plus, {"encoder_output_stride": 16}),
    ("pspnet", smp.PSPNet, {}),
    ("linknet", smp.Linknet, {}),
])
@pytest.mark.parametrize("name", ["resnet18", "convnext_atto"])
def test_same_logits_as_smp_model_with_the_same_weights(decoder, arch, kwargs, name):
    torch.manual_seed(1)
    reference = arch(encoder_name=f"tu-{name}", encoder_weights=None, classes=NUM_CLASSES, **kwargs).eval()
    model = segmentation_model(name, decoder, kwargs).eval()
    missing, unexpected = model.backbone.net.load_state_dict(reference.encoder.model.state_dict(), strict=False)
    assert not unexpected and (not missing or arch is smp.PSPNet)  # smp's depth-3 PSPNet encoder stops at stride 8
    model.decoder.decoder.load_state_dict(reference.decoder.state_dict())
    model.decoder.segmentation_head.load_state_dict(reference.segmentation_head.state_dict())
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(images).logits["segmentation"], reference(images))


def test_dpt_same_logits_as_smp_dpt_on_the_same_vit_blocks():
    torch.manual_seed(1)
    reference = smp.DPT(encoder_name="tu-vit_tiny_patch16_224", encoder_weights=None, classes=NUM_CLASSES,
                        encoder_depth=3, encoder_output_indices=[9, 10, 11], decoder_readout="ignore",
                        decoder_intermediate_channels=(512, 1024, 1024)).eval()
    model = segmentation_model("vit_tiny_patch16_224", "dpt").eval()  # timm's features_only: the last 3 blocks
    # timm's features_only wrapper holds the ViT as .model, without the layers after the last block
    missing, unexpected = model.backbone.net.model.load_state_dict(reference.encoder.model.state_dict(), strict=False)
    assert not missing and all(k.split(".")[0] in ("norm", "fc_norm", "head") for k in unexpected)
    model.decoder.decoder.load_state_dict(reference.decoder.state_dict())
    model.decoder.segmentation_head.load_state_dict(reference.segmentation_head.state_dict())
    images = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(images).logits["segmentation"], reference(images))


# --- foodmtl's own decoders ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["unet", "fpn"])
def test_checkpoints_of_the_earlier_decoders_load_and_compute_the_same(kind):
    """tests/data/legacy_decoders.pt holds the hand-written decoders as commit 9f20bf3 built
    them (tests/data/make_legacy_decoders.py); the backbone now also hands over a stride-2 map."""
    saved = torch.load(LEGACY, weights_only=True)
    stride_two = torch.randn(1, 4, 11, 9)
    decoder = build_decoder(kind, [4, *saved["channels"]], [2, *saved["reductions"]], 3, {"width": 8})
    decoder.load_state_dict(saved[kind]["state_dict"])  # strict: same keys, same shapes
    with torch.no_grad():
        logits = decoder.eval()([stride_two, *saved["maps"]], tuple(saved["out_hw"]))
    torch.testing.assert_close(logits, saved[kind]["logits"])


def test_default_config_still_builds_the_light_unet():
    tasks = [TaskSpec("segmentation", "segmentation", ("bg", "x", "y"))]
    model = build_model(ModelConfig(backbone="resnet18"), tasks)
    assert type(model.decoder).__name__ == "UNetDecoder" and model.decoder.classifier.in_channels == 64


def test_build_model_dilates_the_backbone_and_passes_the_decoder_options():
    tasks = [TaskSpec("segmentation", "segmentation", tuple("bcdef"))]  # NUM_CLASSES, as segmentation_model
    options = {"decoder_atrous_rates": [6, 12, 18], "decoder_channels": 32}
    model = build_model(ModelConfig(backbone="resnet18", decoder="deeplabv3plus", decoder_options=options), tasks)
    assert model.backbone.feature_reductions[-1] == 16  # deeplabv3plus's default encoder_output_stride
    expected = segmentation_model("resnet18", "deeplabv3plus", options)
    assert {k: v.shape for k, v in model.decoder.state_dict().items()} == \
           {k: v.shape for k, v in expected.decoder.state_dict().items()}
    dilations = sorted({m.dilation[0] for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d)})
    assert {6, 12, 18} <= set(dilations)


def test_unet_with_transposed_up_convolutions():
    encoder = backbone("resnet18")
    decoder = build_decoder("unet", encoder.feature_channels, encoder.feature_reductions, 3,
                            {"width": 16, "upsample": "transpose"})
    ups = list(decoder.up)
    assert [(u.kernel_size, u.stride) for u in ups] == [((2, 2), (2, 2))] * 3  # strides 32 -> 16 -> 8 -> 4
    maps = encoder(torch.randn(2, 3, 72, 56)).maps
    assert decoder(maps, (72, 56)).shape == (2, 3, 72, 56)
    bilinear = build_decoder("unet", encoder.feature_channels, encoder.feature_reductions, 3, {"width": 16})
    assert set(decoder.state_dict()) - set(bilinear.state_dict()) == {f"up.{i}.{p}" for i in range(3)
                                                                      for p in ("weight", "bias")}


def test_fcn_upsampler_starts_as_bilinear_interpolation():
    x = torch.randn(1, 3, 6, 5)
    up = bilinear_upsampler(3)(x)
    reference = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert up.shape == reference.shape
    torch.testing.assert_close(up[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1])  # borders: zero padding


def test_fcn_skip_scores_start_at_zero_and_reach_the_output_after_a_step():
    encoder = backbone("resnet18")
    maps = [m.detach() for m in encoder(torch.randn(2, 3, 64, 64)).maps]
    decoder = build_decoder("fcn", encoder.feature_channels, encoder.feature_reductions, 3)
    changed = [m.clone() for m in maps]
    changed[2] += 1.0   # stride 8
    changed[3] -= 1.0   # stride 16
    before = decoder(maps, (64, 64))
    torch.testing.assert_close(decoder(changed, (64, 64)), before)  # FCN-32s at initialisation
    before.square().mean().backward()
    with torch.no_grad():
        for p in decoder.parameters():
            p -= 0.1 * p.grad
    assert not torch.allclose(decoder(changed, (64, 64)), decoder(maps, (64, 64)))


# --- options ------------------------------------------------------------------------------------

@pytest.mark.parametrize("decoder,options,message", [
    ("deeplabv3plus", {"atrous_rates": [6, 12, 18]}, "did you mean decoder_atrous_rates"),
    ("deeplabv3plus", {"decoder_atrous_rates": [6, 12]}, r"decoder_atrous_rates=\[6, 12\]: needs 3 values"),
    ("deeplabv3plus", {"encoder_output_stride": 32}, "choose one of 8, 16"),
    ("deeplabv3", {"decoder_channels": "wide"}, "decoder_channels=wide: expected an integer"),
    ("smp_unet", {"encoder_depth": 4, "decoder_channels": [64, 32, 16]}, "one value per encoder stage, 4"),
    ("unet", {"upsample": "deconv"}, "choose one of bilinear, transpose"),
    ("fcn", {"width": 8}, "not an option of decoder 'fcn'; valid: upsample"),
    ("smp_fpn", {"decoder_dropout": 1.5}, r"must lie in \[0, 1\)"),
    ("smp_fpn", {"decoder_segmentation_channels": 48}, "multiple of 32"),
])
def test_bad_options_name_the_key_and_what_it_takes(decoder, options, message):
    with pytest.raises(ConfigError, match=f"model.decoder_options.*{message}"):
        encoder_output_stride(decoder, options)


def test_unknown_decoder_lists_close_names():
    with pytest.raises(KeyError, match="deeplabv3plus"):
        build_decoder("deeplab", [8], [4], 3)
    with pytest.raises(KeyError, match="fpn"):
        build_decoder("fnp", [8], [4], 3)


def test_options_reach_smp_and_the_backbone():
    assert encoder_output_stride("deeplabv3", {}) == 8 and encoder_output_stride("pan", {}) == 16
    assert encoder_output_stride("pan", {"encoder_output_stride": 32}) is None
    model = segmentation_model("resnet18", "deeplabv3plus",
                               {"encoder_output_stride": 8, "decoder_atrous_rates": [6, 12, 18], "decoder_channels": 32})
    assert model.backbone.feature_reductions[-1] == 8
    dilations = {m.dilation for m in model.decoder.decoder.aspp.modules() if isinstance(m, torch.nn.Conv2d)}
    assert dilations == {(1, 1), (6, 6), (12, 12), (18, 18)}
    assert model(torch.randn(2, 3, 64, 64)).logits["segmentation"].shape == (2, NUM_CLASSES, 64, 64)


def test_config_carries_decoder_options():
    cfg = load_config(None, ["model.decoder=deeplabv3plus", "model.decoder_options.decoder_atrous_rates=[6,12,18]"])
    assert cfg.model.decoder_options == {"decoder_atrous_rates": [6, 12, 18]}


@pytest.mark.parametrize("channels,reductions", [([8, 16], [4]), ([8, 16], [8, 4]), ([], [])])
def test_inconsistent_feature_info_is_rejected(channels, reductions):
    with pytest.raises(ValueError):
        build_decoder("fpn", channels, reductions, 3)
