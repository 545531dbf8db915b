"""One optimizer step over a window of micro-batches (gradient accumulation).

Per micro-batch: forward (AMP), a cross-rank agreement on which tasks have labels
and whether any loss is non-finite, then the weighting strategy's backward.
DDP all-reduces only on the window's last micro-batch (``no_sync`` before it);
gradient-level strategies run every backward under ``no_sync`` and the step
averages their ``.grad`` itself. Tasks absent from the whole window on every
rank have their heads' and strategy parameters' ``.grad`` set to None, so the
optimizer leaves them exactly as they were (no momentum drift). Every
``train.grad_diagnostics_every`` steps the task gradients are measured before each
backward (engine/diagnostics.py), which changes no bit of the update.
"""
from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel as DDP

from foodmtl.config import Config
from foodmtl.data.dataset import Batch
from foodmtl.engine.diagnostics import GradDiagnostics, Window
from foodmtl.engine.distributed import DistInfo, average_gradients, max_over_ranks, mean_where_present
from foodmtl.engine.evaluate import autocast
from foodmtl.engine.objective import Objective, StepOutput

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """A NaN/Inf loss, named by task and step; the last good checkpoint is kept."""


@dataclass
class StepResult:
    losses: dict[str, float]                    # per present task, mean over the window
    weights: dict[str, float] = field(default_factory=dict)
    skipped: bool = False                       # a non-finite loss skipped the step
    diagnostics: dict[str, float] = field(default_factory=dict)  # diag/... on a diagnosed step

    @property
    def total(self) -> float:
        """The unweighted sum of the task losses."""
        return sum(self.losses.values())

    @property
    def objective(self) -> float:
        """The weighted sum sum_t w_t L_t with the strategy's effective weights: what is
        back-propagated for loss-level strategies (without their regularisers, e.g. the
        uncertainty log-variance term), and for gradient-level ones the objective whose gradient
        on the shared parameters is the combined update sum_t c_t g_t."""
        return sum(self.weights.get(t, 1.0) * v for t, v in self.losses.items())


class StepRunner:
    def __init__(self, cfg: Config, objective: Objective, ddp: DDP | None, optimizer, scheduler,
                 scaler: torch.amp.GradScaler, info: DistInfo):
        self.cfg, self.objective, self.ddp, self.info = cfg, objective, ddp, info
        self.optimizer, self.scheduler, self.scaler = optimizer, scheduler, scaler
        self.tasks = list(objective.owners)  # the weighted losses: tasks, or a task's parts (loss_names)
        self.diagnostics = GradDiagnostics(self.tasks, cfg.train.grad_diagnostics_every,
                                           cfg.train.grad_diagnostics_shared, info)

    @property
    def weighting(self):
        return self.objective.weighting

    def run(self, batches: list[Batch], step: int) -> StepResult:
        """Forward/backward every micro-batch, then one optimizer step (``step`` is its 0-based index)."""
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        present_anywhere: set[str] = set()
        weights: dict[str, float] = {}
        diagnosed = self.diagnostics.window(self._shared()) if self.diagnostics.due(step) else None
        for i, batch in enumerate(batches):
            batch = batch.to(self.info.device, self.cfg.model.channels_last)
            last = i == len(batches) - 1
            with self._sync(last):
                with autocast(self.info.device, self.cfg.train.amp):
                    out = (self.ddp or self.objective)(batch.images, batch.targets, batch.present)
                present, finite = self._agree(out)
                if not finite:
                    self._nonfinite(out, step)
                    self.optimizer.zero_grad(set_to_none=True)
                    return StepResult({}, skipped=True)
                if diagnosed is not None and out.present:
                    self._diagnose(diagnosed, out, len(batches))
                weights = self._backward(out, len(batches))
            present_anywhere |= present
            for t in out.present:
                sums[t] = sums.get(t, 0.0) + float(out.losses[t].detach())
                counts[t] = counts.get(t, 0) + 1
        if self.weighting.gradient_based:
            average_gradients(self.objective.parameters(), self.info)
        self._freeze_absent(present_anywhere)
        self._clip_and_step()
        self._update_weighting(batch, out)
        losses = {t: sums[t] / counts[t] for t in sums}
        diagnostics = self.diagnostics.record(diagnosed) if diagnosed is not None else {}
        return StepResult(losses, {t: float(w) for t, w in weights.items()}, diagnostics=diagnostics)

    def _sync(self, last: bool):
        if self.ddp is None or (last and not self.weighting.gradient_based):
            return nullcontext()
        return self.ddp.no_sync()

    def _agree(self, out: StepOutput) -> tuple[set[str], bool]:
        """Tasks with labels on any rank, and whether every rank's losses are finite."""
        flags = [float(t in out.present) for t in self.tasks]
        losses = [out.losses[t].detach().float() for t in out.present]
        bad = float(bool(losses) and not bool(torch.isfinite(torch.stack(losses)).all()))
        agreed = max_over_ranks(flags + [bad], self.info)
        return {t for t, f in zip(self.tasks, agreed) if f}, not agreed[-1]

    def _nonfinite(self, out: StepOutput, step: int) -> None:
        bad = [t for t in out.present if not math.isfinite(float(out.losses[t].detach()))]
        where = f"task(s) {bad}" if bad else "another rank's task(s)"
        message = f"non-finite loss for {where} at step {step + 1}"
        if self.cfg.train.on_nonfinite == "error":
            raise NonFiniteLossError(message)
        log.warning("%s: step skipped", message)

    def _diagnose(self, diagnosed: Window, out: StepOutput, window: int) -> None:
        """The present losses' gradients, taken from the losses as ``_backward`` back-propagates them."""
        losses = [self.scaler.scale(out.losses[t]) / window for t in out.present]
        rows = [self.tasks.index(t) for t in out.present]
        diagnosed.add(rows, losses, out.representation, self.scaler.get_scale())

    def _backward(self, out: StepOutput, window: int) -> dict[str, Tensor | float]:
        if not out.present:  # nothing labelled here; DDP still needs its (zero) gradients
            if self.ddp is not None and not self.weighting.gradient_based:
                self.scaler.scale(out.total).backward()
            return {}
        if not self.weighting.gradient_based:
            self.scaler.scale(out.total / window).backward()
            return out.weights
        # Gradient-level strategies are scale-equivariant (see weighting/gradients.py):
        # back-propagating scaled losses gives scaled gradients, which scaler.step unscales.
        losses = {t: self.scaler.scale(out.losses[t]) / window for t in out.present}
        shared = list(self.objective.model.backbone.parameters())
        return self.weighting.backward(losses, shared, out.representation)

    def _shared(self) -> list[torch.nn.Parameter]:
        """The backbone's parameters now trainable."""
        return [p for p in self.objective.model.backbone.parameters() if p.requires_grad]

    def _freeze_absent(self, present: set[str]) -> None:
        for task in self.tasks:
            if task not in present:
                for p in self.objective.task_parameters(task):
                    p.grad = None

    def _clip_and_step(self) -> None:
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.objective.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()

    def _update_weighting(self, batch: Batch, out: StepOutput) -> None:
        """Hand the strategy the window's last losses, averaged over ranks so its state stays
        identical everywhere; a strategy that asks (FAMO) also gets them re-evaluated after the step."""
        before = self._mean({t: out.losses[t] for t in out.present})
        if not self.weighting.post_step_losses:
            self.weighting.update(before)
            return
        if out.present:
            with torch.no_grad(), autocast(self.info.device, self.cfg.train.amp):
                again = self.objective.task_losses(batch.images, batch.targets)
            after = self._mean({t: again[t] for t in out.present})
        else:
            after = self._mean({})
        self.weighting.update(after, before=before)

    def _mean(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        local = {t: float(v.detach()) for t, v in losses.items()}
        averaged = mean_where_present(local, self.tasks, self.info)
        return {t: torch.tensor(v, device=self.info.device) for t, v in averaged.items()}
