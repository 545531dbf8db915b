"""Per-task evaluation metrics: each task kind's metric module, fed its labelled samples only.

The kinds' modules are torchmetrics metrics, so DDP ranks are reduced for us. A task none of
whose evaluation samples is labelled (on any rank) reports nothing, rather than NaN; every rank
agrees on which tasks those are before computing, since computing reduces across ranks.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from foodmtl.tasks import TaskSpec, get_kind


class TaskMetrics(nn.Module):
    """One metric module per task; ``compute`` returns ``{"task/metric": float}``."""

    def __init__(self, tasks: list[TaskSpec]):
        super().__init__()
        self.specs = {t.name: t for t in tasks}
        self.kinds = {t.name: get_kind(t.kind) for t in tasks}
        self.collections = nn.ModuleDict({t.name: self.kinds[t.name].metrics(t) for t in tasks})
        self.register_buffer("updated", torch.zeros(len(tasks)), persistent=False)

    @torch.no_grad()
    def update(self, outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> None:
        for i, name in enumerate(self.specs):
            keep = self.kinds[name].labelled(targets[name])
            if not bool(keep.any()):
                continue
            self.collections[name].update(outputs[name].float()[keep], targets[name][keep])
            self.updated[i] = 1

    def compute(self) -> dict[str, float]:
        updated = self.updated.clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(updated, op=dist.ReduceOp.MAX)
        out = {}
        for flag, (name, collection) in zip(updated.tolist(), self.collections.items()):
            if flag:
                out.update({f"{name}/{key}": float(value) for key, value in collection.compute().items()})
        return out

    def reset(self) -> None:
        for collection in self.collections.values():
            collection.reset()
        self.updated.zero_()
