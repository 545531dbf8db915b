"""Evaluation over a loader: every sample once, metrics and losses reduced over all ranks.

Besides each kind's metrics it reports the training loss on the eval split: ``<task>/loss``, the
loss the task's kind trains with (label smoothing included, so it reads against
``train/loss/<task>``) of the whole eval split as if it were one batch, and ``loss``, their
unweighted sum (as ``train/loss``). For the per-sample losses of multiclass, multilabel and
regression tasks that is the mean over the labelled samples; segmentation's is the CE over all
labelled pixels plus 1 - soft Dice from per-class sums over the whole set; the instances loss is
the mean over labelled images of each image's Mask R-CNN loss, computed alone with a seeded
sampler. Each kind's ``eval_loss_state`` adds over batches and ranks (one all-reduce), and
``eval_loss_value`` turns the total into the loss once, so no reported loss depends on the eval
batch size or the number of ranks.
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
    """Per task, its kind's ``eval_loss_state`` summed over batches (and ranks in ``compute``)."""

    def __init__(self, tasks: list[TaskSpec], device: torch.device):
        self.tasks = tasks
        self.kinds = [get_kind(t.kind) for t in tasks]
        self.sizes = [kind.eval_loss_size(t) for kind, t in zip(self.kinds, tasks)]
        self.state = torch.zeros(sum(self.sizes), dtype=torch.float64, device=device)

    def update(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> None:
        for spec, kind, part in zip(self.tasks, self.kinds, self.state.split(self.sizes)):
            if bool(kind.labelled(targets[spec.name]).any()):
                part += kind.eval_loss_state(spec, outputs[spec.name], targets[spec.name]).to(part.device)

    def compute(self, info: DistInfo) -> dict[str, float]:
        """``{"loss": sum of the tasks' losses, "<task>/loss": loss}`` over the tasks labelled on any rank."""
        state = self.state.clone()
        if info.world > 1:
            dist.all_reduce(state)
        values = {f"{spec.name}/loss": kind.eval_loss_value(spec, part)
                  for spec, kind, part in zip(self.tasks, self.kinds, state.split(self.sizes))}
        losses = {k: v for k, v in values.items() if v is not None}
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
