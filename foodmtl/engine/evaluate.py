"""Evaluation over a loader: every sample once, metrics reduced over all ranks."""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.utils.data import DataLoader

from foodmtl.data.dataset import collate
from foodmtl.engine.distributed import DistInfo, ShardSampler, sum_over_ranks
from foodmtl.engine.metrics import TaskMetrics
from foodmtl.models.multitask import MultiTaskModel

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_amp(amp: str, device: torch.device) -> str:
    """``auto``: bf16 where the GPU supports it (no loss scaling needed), else full precision."""
    if amp != "auto":
        return amp
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "none"


def autocast(device: torch.device, amp: str):
    amp = resolve_amp(amp, device)
    if amp == "none":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


def eval_loader(dataset, batch_size: int, workers: int, info: DistInfo) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=ShardSampler(len(dataset), info.rank, info.world),
                      num_workers=workers, collate_fn=collate)


@torch.no_grad()
def evaluate(model: MultiTaskModel, loader: DataLoader, info: DistInfo, amp: str = "none",
             channels_last: bool = False) -> tuple[dict[str, float], int]:
    """Returns ({"task/metric": value}, number of unreadable images skipped)."""
    was_training = model.training
    model.eval()
    metrics = TaskMetrics(model.tasks).to(info.device)
    skipped = 0
    for batch in loader:
        skipped += len(batch.skipped)
        if not batch.targets:
            continue
        batch = batch.to(info.device, channels_last)
        with autocast(info.device, amp):
            out = model(batch.images)
        metrics.update(out.logits, batch.targets)
    model.train(was_training)
    return metrics.compute(), sum_over_ranks(skipped, info)
