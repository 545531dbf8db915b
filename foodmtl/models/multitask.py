"""Shared backbone + one head per task (+ a segmentation decoder when asked for)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from foodmtl.config import ModelConfig
from foodmtl.models.backbone import Backbone
from foodmtl.models.heads import LinearHead
from foodmtl.tasks import TaskSpec


@dataclass
class ModelOutput:
    logits: dict[str, Tensor]   # task -> (B, C) or (B, C, H, W) for segmentation
    representation: Tensor      # pooled shared features (B, D), for rep-grad strategies


class MultiTaskModel(nn.Module):
    def __init__(self, backbone: Backbone, tasks: list[TaskSpec], drop_rate: float = 0.0,
                 decoder: nn.Module | None = None):
        super().__init__()
        self.backbone = backbone
        self.tasks = list(tasks)
        self.heads = nn.ModuleDict({
            t.name: LinearHead(backbone.num_features, t.num_classes, drop_rate)
            for t in tasks if t.kind != "segmentation"
        })
        self.seg_tasks = [t.name for t in tasks if t.kind == "segmentation"]
        if self.seg_tasks and decoder is None:
            raise ValueError(f"tasks {self.seg_tasks} need a segmentation decoder")
        self.decoder = decoder

    def forward(self, images: Tensor) -> ModelOutput:
        feats = self.backbone(images)
        logits = {name: head(feats.pooled) for name, head in self.heads.items()}
        for name in self.seg_tasks:
            logits[name] = self.decoder(feats.maps, images.shape[-2:])
        return ModelOutput(logits, feats.pooled)


    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """Parameters that only ``task``'s loss reaches (its head, or the decoder for segmentation)."""
        if task in self.heads:
            return list(self.heads[task].parameters())
        only_segmentation = len(self.seg_tasks) == 1 and task in self.seg_tasks
        return list(self.decoder.parameters()) if only_segmentation else []


def build_model(cfg: ModelConfig, tasks: list[TaskSpec]) -> MultiTaskModel:
    seg = [t for t in tasks if t.kind == "segmentation"]
    backbone = Backbone(cfg.backbone, cfg.pretrained, cfg.pretrained_file,
                        multiscale=bool(seg), drop_path_rate=cfg.drop_path_rate)
    decoder = None
    if seg:
        from foodmtl.models.seg_decoder import build_decoder
        decoder = build_decoder(cfg.decoder, backbone.feature_channels, backbone.feature_reductions,
                                seg[0].num_classes)
    return MultiTaskModel(backbone, tasks, cfg.drop_rate, decoder)
