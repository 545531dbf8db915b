"""Each decoder's options (``model.decoder_options``) as a typed dataclass, checked without torch.

The smp decoders take segmentation_models_pytorch's own keyword names and defaults (smp 0.6.0,
``segmentation_models_pytorch/decoders/<arch>/model.py``), so its documentation applies as it
stands; foodmtl's decoders (unet, fpn, fcn) have their own few. An unknown option is reported
with the closest names, a bad value with what it accepts, both as a ConfigError naming the key.
This module imports no torch, so a config can be checked before the heavy imports.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from foodmtl.errors import ConfigError
from foodmtl.config.types import type_error
from foodmtl.utils.registry import resolve_name

PREFIX = "model.decoder_options"
Check = Callable[[Any], "str | None"]


def choice(*allowed: Any) -> Check:
    return lambda v: None if v in allowed else "choose one of " + ", ".join(map(str, allowed))


def between(low: int, high: int) -> Check:
    return lambda v: None if low <= v <= high else f"must lie in {low}..{high}"


def positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def multiple_of_32(v: int) -> str | None:
    return None if v > 0 and v % 32 == 0 else "must be a positive multiple of 32"


def fraction(v: float) -> str | None:
    return None if 0 <= v < 1 else "must lie in [0, 1)"


def positive_ints(count: int | None = None) -> Check:
    def check(v: list[int] | None) -> str | None:
        if v is None:
            return None
        if count is not None and len(v) != count:
            return f"needs {count} values"
        return None if v and all(x > 0 for x in v) else "needs positive integers"
    return check


def option(default: Any, check: Check | None = None) -> Any:
    """A field with its check; list defaults are copied per instance."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"check": check})
    return field(default=default, metadata={"check": check})


NORMS = choice("batchnorm", "identity", "layernorm", "instancenorm")  # smp's, less "inplace" (needs inplace_abn)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area", "nearest-exact")


@dataclass(frozen=True)
class DecoderOptions:
    """Base: runs every field's check, then ``check`` for rules that tie fields together."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            problem = check(getattr(self, f.name)) if check else None
            if problem:
                raise ConfigError(f"{PREFIX}.{f.name}={getattr(self, f.name)!r}: {problem}")
        self.check()

    def check(self) -> None:
        pass

    def same_length(self, name: str, depth: int) -> None:
        value = getattr(self, name)
        if value is not None and len(value) != depth:
            raise ConfigError(f"{PREFIX}.{name}={value}: needs one value per encoder stage, "
                              f"{depth} for encoder_depth={depth}")


# --- foodmtl's own decoders -------------------------------------------------------------------

@dataclass(frozen=True)
class LightUNetOptions(DecoderOptions):
    width: int = option(64, positive)                                 # channels of every decoder stage
    upsample: str = option("bilinear", choice("bilinear", "transpose"))  # transpose: learned 2x2 up-convolutions


@dataclass(frozen=True)
class LightFPNOptions(DecoderOptions):
    width: int = option(64, positive)


@dataclass(frozen=True)
class FCNOptions(DecoderOptions):
    upsample: str = option("transpose", choice("transpose", "bilinear"))  # of the two 2x fusion steps


# --- segmentation_models_pytorch's decoders ---------------------------------------------------

@dataclass(frozen=True)
class SmpUnetOptions(DecoderOptions):
    encoder_depth: int = option(5, between(3, 5))
    decoder_channels: list[int] | None = option(None, positive_ints())  # None: (256, 128, 64, 32, 16)[:depth]
    decoder_use_norm: str = option("batchnorm", NORMS)
    decoder_attention_type: str | None = option(None, choice(None, "scse"))
    decoder_interpolation: str = option("nearest", choice(*INTERPOLATIONS))

    def check(self) -> None:
        self.same_length("decoder_channels", self.encoder_depth)


@dataclass(frozen=True)
class UnetPlusPlusOptions(SmpUnetOptions):
    pass


@dataclass(frozen=True)
class MAnetOptions(DecoderOptions):
    encoder_depth: int = option(5, between(3, 5))
    decoder_channels: list[int] | None = option(None, positive_ints())
    decoder_use_norm: str = option("batchnorm", NORMS)
    decoder_pab_channels: int = option(64, positive)
    decoder_interpolation: str = option("nearest", choice(*INTERPOLATIONS))

    def check(self) -> None:
        self.same_length("decoder_channels", self.encoder_depth)


@dataclass(frozen=True)
class LinknetOptions(DecoderOptions):
    encoder_depth: int = option(5, between(3, 5))
    decoder_use_norm: str = option("batchnorm", NORMS)


@dataclass(frozen=True)
class SmpFPNOptions(DecoderOptions):
    encoder_depth: int = option(5, between(3, 5))
    decoder_pyramid_channels: int = option(256, positive)
    decoder_segmentation_channels: int = option(128, multiple_of_32)  # smp normalises them with GroupNorm(32, .)
    decoder_merge_policy: str = option("add", choice("add", "cat"))
    decoder_dropout: float = option(0.2, fraction)
    decoder_interpolation: str = option("nearest", choice(*INTERPOLATIONS))


@dataclass(frozen=True)
class PSPNetOptions(DecoderOptions):
    encoder_depth: int = option(3, between(1, 5))
    psp_out_channels: int = option(512, positive)
    decoder_use_norm: str = option("batchnorm", NORMS)
    psp_dropout: float = option(0.2, fraction)


@dataclass(frozen=True)
class DeepLabV3Options(DecoderOptions):
    encoder_depth: int = option(5, between(3, 5))
    encoder_output_stride: int = option(8, choice(8, 16))      # dilated backbone: maps stop at this stride
    decoder_channels: int = option(256, positive)
    decoder_atrous_rates: list[int] = option([12, 24, 36], positive_ints(3))  # ASPP dilation rates
    decoder_aspp_separable: bool = option(False)
    decoder_aspp_dropout: float = option(0.5, fraction)


@dataclass(frozen=True)
class DeepLabV3PlusOptions(DeepLabV3Options):
    encoder_output_stride: int = option(16, choice(8, 16))
    decoder_aspp_separable: bool = option(True)


@dataclass(frozen=True)
class PANOptions(DecoderOptions):
    encoder_depth: int = option(5, between(3, 5))
    encoder_output_stride: int = option(16, choice(16, 32))
    decoder_channels: int = option(32, positive)
    decoder_interpolation: str = option("bilinear", choice(*INTERPOLATIONS))


@dataclass(frozen=True)
class UPerNetOptions(DecoderOptions):
    encoder_depth: int = option(5, between(3, 5))
    decoder_channels: int = option(256, positive)
    decoder_use_norm: str = option("batchnorm", NORMS)


@dataclass(frozen=True)
class SegformerOptions(DecoderOptions):
    encoder_depth: int = option(5, between(3, 5))
    decoder_segmentation_channels: int = option(256, positive)


@dataclass(frozen=True)
class DPTOptions(DecoderOptions):
    # None: as many maps as decoder_intermediate_channels has values, else the backbone's last 4 (or all, if fewer)
    encoder_depth: int | None = option(None, lambda v: None if v is None or 1 <= v <= 4 else "must lie in 1..4")
    decoder_intermediate_channels: list[int] | None = option(None, positive_ints())  # None: smp's, the last depth
    decoder_fusion_channels: int = option(256, positive)

    def check(self) -> None:
        if self.encoder_depth is not None:
            self.same_length("decoder_intermediate_channels", self.encoder_depth)


# Decoder name -> its options; also the light list of names a config is checked against.
OPTIONS: dict[str, type[DecoderOptions]] = {
    "unet": LightUNetOptions, "fpn": LightFPNOptions, "fcn": FCNOptions,
    "smp_unet": SmpUnetOptions, "unetplusplus": UnetPlusPlusOptions, "smp_fpn": SmpFPNOptions,
    "pspnet": PSPNetOptions, "deeplabv3": DeepLabV3Options, "deeplabv3plus": DeepLabV3PlusOptions,
    "linknet": LinknetOptions, "manet": MAnetOptions, "pan": PANOptions, "upernet": UPerNetOptions,
    "segformer": SegformerOptions, "dpt": DPTOptions,
}


def decoder_name(name: str) -> str:
    """The registered spelling of ``name`` (any case); UnknownNameError with close names."""
    return resolve_name("segmentation decoder", name, OPTIONS)


def parse_options(name: str, raw: Mapping[str, Any] | None) -> DecoderOptions:
    """``raw`` (``model.decoder_options``) checked against decoder ``name``'s dataclass."""
    cls = OPTIONS[decoder_name(name)]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in (raw or {}).items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else f"valid: {', '.join(fields) or 'none'}"
            raise ConfigError(f"{PREFIX}.{key}: not an option of decoder '{name}'; {hint}")
        problem = type_error(f"{PREFIX}.{key}", value, fields[key].type)
        if problem:
            raise ConfigError(problem)
        values[key] = convert(value, fields[key].type)
    return cls(**values)


def convert(value: Any, annotation: str) -> Any:
    """Numbers typed as text ("3") become numbers, as OmegaConf does for typed fields."""
    base = annotation.removesuffix(" | None")
    if value is None:
        return None
    if base == "int":
        return int(value)
    if base == "float":
        return float(value)
    if base == "list[int]":
        return [int(v) for v in value]
    return value


def encoder_output_stride(name: str, raw: Mapping[str, Any] | None) -> int | None:
    """The output stride the backbone must be dilated to for this decoder, or None (no dilation)."""
    return dilation(parse_options(name, raw))


def dilation(options: DecoderOptions) -> int | None:
    stride = getattr(options, "encoder_output_stride", None)
    return None if stride in (None, 32) else stride
