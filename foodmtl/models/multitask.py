"""Shared backbone + one head per task (+ a segmentation decoder for a dense task; heads on the
backbone's maps, e.g. Mask R-CNN, for ``multiscale`` kinds)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from foodmtl.config import ModelConfig
from foodmtl.models.backbone import Backbone
from foodmtl.models.decoders import build_decoder, encoder_output_stride
from foodmtl.tasks import TaskSpec, get_kind


@dataclass
class ModelOutput:
    logits: dict[str, Tensor]   # task -> its kind's raw output: (B, C), (B, 1), (B, C, H, W) or InstanceOutput
    representation: Tensor      # pooled shared features (B, D), for rep-grad strategies


class MultiTaskModel(nn.Module):
    """Each task's kind builds its head on the pooled features; a dense task (segmentation) is
    predicted by ``decoder`` from the backbone's multi-scale maps. One backbone forward per batch."""

    def __init__(self, backbone: Backbone, tasks: list[TaskSpec], drop_rate: float = 0.0,
                 decoder: nn.Module | None = None):
        super().__init__()
        self.backbone = backbone
        self.tasks = list(tasks)
        self.map_tasks = [t.name for t in tasks if get_kind(t.kind).multiscale]
        heads = {t.name: get_kind(t.kind).map_head(t, backbone.feature_channels, backbone.feature_reductions)
                 if t.name in self.map_tasks else get_kind(t.kind).head(t, backbone.num_features, drop_rate)
                 for t in tasks}
        self.heads = nn.ModuleDict({name: head for name, head in heads.items() if head is not None})
        self.dense_tasks = [name for name, head in heads.items() if head is None]
        if len(self.dense_tasks) > 1:
            raise ValueError(f"one decoder serves one dense task; got {self.dense_tasks}")
        if self.dense_tasks and decoder is None:
            raise ValueError(f"tasks {self.dense_tasks} need a segmentation decoder")
        self.decoder = decoder

    def forward(self, images: Tensor) -> ModelOutput:
        feats = self.backbone(images)
        logits = {name: head(feats.maps, images.shape[-2:]) if name in self.map_tasks else head(feats.pooled)
                  for name, head in self.heads.items()}
        for name in self.dense_tasks:
            logits[name] = self.decoder(feats.maps, images.shape[-2:])
        return ModelOutput(logits, feats.pooled)

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """Parameters that only ``task``'s loss reaches (its head, or the decoder of a dense task)."""
        if task in self.heads:
            return list(self.heads[task].parameters())
        return list(self.decoder.parameters()) if task in self.dense_tasks else []


def build_model(cfg: ModelConfig, tasks: list[TaskSpec]) -> MultiTaskModel:
    dense = [t for t in tasks if get_kind(t.kind).dense]
    multiscale = bool(dense) or any(get_kind(t.kind).multiscale for t in tasks)
    # a DeepLab-style decoder reads dilated maps: timm's output_stride, asked for before the backbone exists
    output_stride = encoder_output_stride(cfg.decoder, cfg.decoder_options) if dense else None
    backbone = Backbone(cfg.backbone, cfg.pretrained, cfg.pretrained_file, multiscale=multiscale,
                        drop_path_rate=cfg.drop_path_rate, output_stride=output_stride)
    decoder = None
    if dense:
        decoder = build_decoder(cfg.decoder, backbone.feature_channels, backbone.feature_reductions,
                                dense[0].num_classes, cfg.decoder_options)
    return MultiTaskModel(backbone, tasks, cfg.drop_rate, decoder)
