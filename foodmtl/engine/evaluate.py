"""Evaluation over a loader: every sample once, metrics and losses reduced over all ranks.

Besides each kind's metrics it reports the training loss on the eval split: ``<task>/loss``, the
loss the task's kind trains with (``get_kind(kind).loss``, label smoothing included, so it reads
against ``train/loss/<task>``), averaged over batches weighted by their labelled samples (exactly
the mean over labelled samples for the per-sample losses of multiclass, multilabel and
regression tasks; segmentation's loss, a mean over a batch's pixels, is weighted by the batch's
labelled images), and ``loss``, their unweighted sum (as ``train/loss``).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from foodmtl.data.dataset import collate
from foodmtl.engine.distributed import DistInfo, ShardSampler, sum_over_ranks
from foodmtl.engine.metrics import TaskMetrics
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tasks import TaskSpec, get_kind
from foodmtl.tracking.progress import progress

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


class EvalLoss:
    """Per task: the sum of batch losses times labelled samples, and the labelled samples."""

    def __init__(self, tasks: list[TaskSpec], device: torch.device):
        self.tasks = tasks
        self.sums = torch.zeros(2, len(tasks), dtype=torch.float64, device=device)

    def update(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> None:
        for i, spec in enumerate(self.tasks):
            kind = get_kind(spec.kind)
            labelled = kind.labelled(targets[spec.name]).sum()
            if labelled:
                self.sums[0, i] += kind.loss(spec, outputs[spec.name].float(), targets[spec.name]).double() * labelled
                self.sums[1, i] += labelled

    def compute(self, info: DistInfo) -> dict[str, float]:
        """``{"loss": sum of the means, "<task>/loss": mean}`` over the tasks labelled on any rank."""
        sums = self.sums.clone()
        if info.world > 1:
            dist.all_reduce(sums)
        losses = {f"{t.name}/loss": float(sums[0, i] / sums[1, i]) for i, t in enumerate(self.tasks) if sums[1, i] > 0}
        return {"loss": sum(losses.values()), **losses} if losses else {}


@torch.no_grad()
def evaluate(model: MultiTaskModel, loader: DataLoader, info: DistInfo, amp: str = "none",
             channels_last: bool = False, show_progress: bool = False) -> tuple[dict[str, float], int]:
    """Returns ({"loss": total, "task/loss": value, "task/metric": value}, number of unreadable
    images skipped; timm's order, loss first). ``show_progress``: a bar on rank 0's terminal."""
    was_training = model.training
    model.eval()
    metrics = TaskMetrics(model.tasks).to(info.device)
    losses = EvalLoss(model.tasks, info.device)
    skipped = 0
    for batch in progress(loader, "eval", unit="batch", enabled=show_progress and info.is_main):
        skipped += len(batch.skipped)
        if not batch.targets:
            continue
        batch = batch.to(info.device, channels_last)
        with autocast(info.device, amp):
            out = model(batch.images)
        metrics.update(out.logits, batch.targets)
        losses.update(out.logits, batch.targets)
    model.train(was_training)
    return {**losses.compute(info), **metrics.compute()}, sum_over_ranks(skipped, info)
