"""FCN-8s (Long, Shelhamer and Darrell 2015, "Fully Convolutional Networks for Semantic
Segmentation", CVPR) on the backbone's maps at strides 8, 16 and 32.

A 1x1 convolution scores each of the three maps per class; the stride-32 scores are upsampled
2x and added to the stride-16 scores, that sum upsampled 2x and added to the stride-8 scores,
and the result upsampled 8x to the input and cropped to it. As in the paper (Sec. 4.2) the 2x
steps are transposed convolutions initialised to bilinear interpolation and then learned, the
skip score layers start at zero ("so that the net starts with unaltered predictions"), and the
final 8x step is fixed bilinear (``upscore8`` has ``lr_mult=0`` in the reference
``voc-fcn8s/net.py``, github.com/shelhamer/fcn.berkeleyvision.org). ``upsample: bilinear``
fixes the 2x steps too. Upsampled scores are cropped (or zero-padded) at the bottom and right
to the finer map's size, the reference's ``crop`` layer. The reference's fc6/fc7 are not
rebuilt: the backbone's last stage plays their part.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foodmtl.errors import ConfigError
from foodmtl.models.decoders.common import fit
from foodmtl.config.decoders import FCNOptions
from foodmtl.models.decoders.registry import DECODERS

STRIDES = (8, 16, 32)


def bilinear_kernel(size: int) -> Tensor:
    """The (size, size) kernel with which a stride size//2 transposed convolution interpolates bilinearly."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 else factor - 0.5
    line = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor
    return line[:, None] * line[None, :]


def bilinear_upsampler(channels: int) -> nn.ConvTranspose2d:
    """2x transposed convolution, each class from itself only, initialised to bilinear interpolation."""
    up = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
    with torch.no_grad():
        up.weight.zero_()
        up.weight[range(channels), range(channels)] = bilinear_kernel(4)
    return up


@DECODERS.register("fcn")
class FCN8sDecoder(nn.Module):
    def __init__(self, channels: list[int], reductions: list[int], num_classes: int, options: FCNOptions):
        super().__init__()
        missing = [s for s in STRIDES if s not in reductions]
        if missing:
            raise ConfigError(f"decoder 'fcn' reads maps at strides 8, 16 and 32; this backbone's maps are at "
                              f"strides {list(reductions)}. Hierarchical backbones (resnet*, convnext*, "
                              "efficientnet*, swin*) have them; for plain ViTs use unet, fpn or dpt")
        self.levels = [max(i for i, r in enumerate(reductions) if r == s) for s in STRIDES]
        self.score = nn.ModuleList(nn.Conv2d(channels[i], num_classes, 1) for i in self.levels)
        for skip in self.score[:2]:
            nn.init.zeros_(skip.weight)
            nn.init.zeros_(skip.bias)
        self.transpose = options.upsample == "transpose"
        if self.transpose:
            self.up = nn.ModuleList(bilinear_upsampler(num_classes) for _ in range(2))

    def forward(self, maps: list[Tensor], out_hw: tuple[int, int]) -> Tensor:
        s8, s16, s32 = (score(maps[i]) for score, i in zip(self.score, self.levels))
        x = s16 + self.up2(0, s32, s16)
        x = s8 + self.up2(1, x, s8)
        x = F.interpolate(x, size=(8 * x.shape[-2], 8 * x.shape[-1]), mode="bilinear", align_corners=False)
        return fit(x, out_hw)

    def up2(self, step: int, x: Tensor, like: Tensor) -> Tensor:
        if self.transpose:
            return fit(self.up[step](x), like.shape[-2:])
        return fit(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), like.shape[-2:])
