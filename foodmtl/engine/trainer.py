"""The training loop, readable top to bottom: build, (resume,) then epochs of train + evaluate."""
from __future__ import annotations

import dataclasses
import logging
import math
import random
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from foodmtl.config import Config, save_config, to_dict
from foodmtl.data.builder import build_data, train_loader
from foodmtl.engine.checkpoint import load_checkpoint, save_checkpoint
from foodmtl.engine.distributed import (DistInfo, average_gradients, broadcast_object, cleanup,
                                        init_distributed, sum_over_ranks)
from foodmtl.engine.evaluate import autocast, eval_loader, evaluate
from foodmtl.engine.objective import Objective, StepOutput
from foodmtl.engine.preemption import Preempted, PreemptionFlag
from foodmtl.engine.run_dir import new_run_dir, resume_checkpoint
from foodmtl.models.multitask import build_model
from foodmtl.registry import unknown_name_error
from foodmtl.tasks import TaskSpec
from foodmtl.tracking import NullTracker, Tracker
from foodmtl.tracking.wandb_run import WandbWriter
from foodmtl.weighting import build_weighting

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """A NaN/Inf loss, named by task and step; the last good checkpoint is kept."""


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def param_groups(objective: Objective, weight_decay: float) -> list[dict]:
    """No weight decay on biases, norms and the strategy's own learnable weights."""
    strategy = {id(p) for p in objective.weighting.parameters()}
    decay, no_decay, weighting = [], [], []
    for p in objective.parameters():
        if not p.requires_grad:
            continue
        if id(p) in strategy:
            weighting.append(p)
        elif p.ndim <= 1:
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if weighting:
        groups.append({"params": weighting, "weight_decay": 0.0})
    return groups


def warmup_cosine(total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


def task_table(tasks: list[TaskSpec]) -> list[dict]:
    return [{"name": t.name, "kind": t.kind, "classes": list(t.classes)} for t in tasks]


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0      # batches of this epoch already trained (resume point)
    best: float = -math.inf
    skipped: int = 0


class Trainer:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.info: DistInfo = init_distributed(cfg.train.device)
        set_seed(cfg.train.seed)
        resume = resume_checkpoint(cfg) if self.info.is_main else None
        resume = broadcast_object(str(resume) if resume else None, self.info)
        run_dir = resume and str(Path(resume).parent.parent)
        if self.info.is_main and run_dir is None:
            run_dir = str(new_run_dir(cfg))
        self.run_dir = Path(broadcast_object(run_dir, self.info))

        data = build_data(cfg.data, cfg.tasks, cfg.train.seed)
        self.tasks = data.tasks
        self.train_loader = train_loader(data.train, cfg.data.batch_size, cfg.data.num_workers, cfg.train.seed,
                                         self.info.rank, self.info.world, self.info.device.type == "cuda")
        self.eval_loader = eval_loader(data.eval, cfg.data.eval_batch_size, cfg.data.num_workers, self.info)
        model = build_model(cfg.model, self.tasks)
        weighting = build_weighting(cfg.weighting.name, [t.name for t in self.tasks], cfg.weighting.options)
        self.objective = Objective(model, weighting, cfg.optim.label_smoothing).to(self.info.device)
        if cfg.model.channels_last:
            self.objective.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(param_groups(self.objective, cfg.optim.weight_decay), lr=cfg.optim.lr)
        steps_per_epoch = len(self.train_loader)
        self.total_steps = cfg.train.max_steps or cfg.train.epochs * steps_per_epoch
        warmup = int(cfg.optim.warmup_epochs * steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(self.total_steps, warmup))
        self.scaler = torch.amp.GradScaler(enabled=cfg.train.amp == "fp16")
        self.state = TrainState()
        wandb_id = self._restore(load_checkpoint(resume)) if resume else None
        # Wrapped after restoring so DDP broadcasts the restored weights from rank 0.
        self.ddp = DDP(self.objective) if self.info.world > 1 else None
        self.tracker = self._make_tracker(wandb_id)
        self.preemption = PreemptionFlag()

    def _make_tracker(self, wandb_id: str | None):
        if not self.info.is_main:
            return NullTracker()
        resolved = dataclasses.replace(self.cfg, run=self.run_dir.name, resume=None)
        save_config(resolved, self.run_dir / "config.yaml")
        t = self.cfg.tracking
        wandb = WandbWriter(t.wandb, self.run_dir, self.run_dir.name, to_dict(resolved), t.project, t.entity,
                            t.group or self.cfg.experiment, t.tags, run_id=wandb_id)
        return Tracker(self.run_dir, wandb, resume_step=self.state.step if self.cfg.resume else None)

    # ---- the loop -------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        self.preemption.install()
        try:
            final: dict[str, float] = {}
            while self.state.epoch < self.cfg.train.epochs and not self.done():
                self.train_epoch()
                final = self.evaluate_and_checkpoint()
                self.state.epoch += 1
                self.state.batch_in_epoch = 0
            self.tracker.summary({"final": final, "best": self.state.best, "steps": self.state.step,
                                  "epochs": self.state.epoch, "skipped_images": self.state.skipped})
            return final
        finally:
            self.preemption.restore()
            self.tracker.finish()
            cleanup()

    def done(self) -> bool:
        return bool(self.cfg.train.max_steps) and self.state.step >= self.cfg.train.max_steps

    def train_epoch(self) -> None:
        self.objective.train()
        self.train_loader.sampler.set_epoch(self.state.epoch, self.state.batch_in_epoch * self.cfg.data.batch_size)
        bar = tqdm(self.train_loader, desc=f"epoch {self.state.epoch + 1}/{self.cfg.train.epochs}",
                   disable=not (self.info.is_main and self.cfg.train.progress), leave=False)
        for batch in bar:
            self._note_skipped(batch.skipped)
            if batch.targets:
                loss = self.train_step(batch)
                bar.set_postfix(loss=f"{loss:.3f}")
            self.state.batch_in_epoch += 1
            self._step_boundary()
            if self.done():
                break
        self.objective.weighting.end_epoch()

    def _step_boundary(self) -> None:
        every = self.cfg.train.checkpoint_every
        if every and self.state.step % every == 0 and self.info.is_main:
            self._save("last.pt")
            self._save_numbered()
        if self.preemption.agreed(self.info):
            if self.info.is_main:
                self._save("last.pt")
                log.warning("preempted at step %d: checkpoint saved to %s", self.state.step, self.run_dir)
            raise Preempted()

    def train_step(self, batch) -> float:
        cfg = self.cfg
        batch = batch.to(self.info.device, cfg.model.channels_last)
        module = self.ddp or self.objective
        gradient_based = self.objective.weighting.gradient_based
        sync = self.ddp.no_sync() if (self.ddp and gradient_based) else nullcontext()
        self.optimizer.zero_grad(set_to_none=True)
        with sync:
            with autocast(self.info.device, cfg.train.amp):
                out = module(batch.images, batch.targets, batch.present)
            if not self._finite(out):
                return float("nan")
            if gradient_based:
                present = {t: out.losses[t] for t in out.present}
                shared = list(self.objective.model.backbone.parameters())
                weights = self.objective.weighting.backward(present, shared, out.representation)
            else:
                weights = out.weights
                self.scaler.scale(out.total).backward()
        if gradient_based:
            average_gradients(self.objective.parameters(), self.info)
        self._clip_and_step()
        self.objective.weighting.update({t: out.losses[t].detach() for t in out.present})
        self.state.step += 1
        record = self._step_record(out, weights)
        if self.state.step % cfg.train.log_every == 0:
            self.tracker.log(record, self.state.step)
        return record["train/loss"]

    def _finite(self, out: StepOutput) -> bool:
        """NaN/Inf: raise naming the task and step, or skip the step (train.on_nonfinite)."""
        values = torch.stack([out.losses[t].detach().float() for t in out.present])
        if bool(torch.isfinite(values).all()):
            return True
        bad = [t for t, v in zip(out.present, values.tolist()) if not math.isfinite(v)]
        message = f"non-finite loss for task(s) {bad} at step {self.state.step + 1}"
        if self.cfg.train.on_nonfinite == "error":
            raise NonFiniteLossError(f"{message}; last good checkpoint: {self.run_dir / 'checkpoints'}")
        log.warning("%s: step skipped", message)
        return False

    def _clip_and_step(self) -> None:
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.objective.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()

    def _step_record(self, out: StepOutput, weights) -> dict[str, float]:
        losses = {f"train/loss/{t}": float(out.losses[t].detach()) for t in out.present}
        total = float(out.total.detach()) if out.total is not None else sum(losses.values())
        record = {"train/loss": total, **losses, "lr": self.scheduler.get_last_lr()[0], "epoch": self.state.epoch}
        record.update({f"weight/{t}": float(w) for t, w in weights.items()})
        return record

    def _note_skipped(self, paths: list[str]) -> None:
        if paths:
            self.state.skipped += len(paths)
            log.warning("skipped %d unreadable image(s): %s", len(paths), ", ".join(paths[:3]))

    def evaluate_and_checkpoint(self) -> dict[str, float]:
        metrics, skipped = evaluate(self.objective.model, self.eval_loader, self.info, self.cfg.train.amp,
                                    self.cfg.model.channels_last)
        record = {f"eval/{k}": v for k, v in metrics.items()}
        record.update({"epoch": self.state.epoch, "data/skipped_train": sum_over_ranks(self.state.skipped, self.info),
                       "data/skipped_eval": skipped})
        self.tracker.log(record, self.state.step)
        if self.cfg.train.best_metric not in metrics:
            raise unknown_name_error("train.best_metric", self.cfg.train.best_metric, metrics)
        score = metrics[self.cfg.train.best_metric]
        is_best = score > self.state.best
        self.state.best = max(self.state.best, score)
        if self.info.is_main:
            # The checkpoint marks the epoch as finished: a resume starts the next one.
            finished = dataclasses.replace(self.state, epoch=self.state.epoch + 1, batch_in_epoch=0)
            self._save("last.pt", finished)
            if is_best:
                self._save("best.pt", finished)
        return metrics

    # ---- checkpoints --------------------------------------------------------------------
    def _save(self, name: str, state: TrainState | None = None) -> None:
        snapshot = {
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "train_state": dataclasses.asdict(state or self.state),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "config": to_dict(self.cfg) | {"run": self.run_dir.name, "resume": None},
            "tasks": task_table(self.tasks),
            "wandb_id": getattr(self.tracker.wandb, "run_id", None),
        }
        save_checkpoint(snapshot, self.run_dir / "checkpoints" / name)

    def _save_numbered(self) -> None:
        keep = self.cfg.train.keep_checkpoints
        if keep <= 0:
            return
        folder = self.run_dir / "checkpoints"
        self._save(f"step-{self.state.step:08d}.pt")
        for old in sorted(folder.glob("step-*.pt"))[:-keep]:
            old.unlink()

    def _restore(self, snapshot: dict) -> str | None:
        self.objective.load_state_dict(snapshot["objective"])
        self.optimizer.load_state_dict(snapshot["optimizer"])
        self.scheduler.load_state_dict(snapshot["scheduler"])
        self.scaler.load_state_dict(snapshot["scaler"])
        self.state = TrainState(**snapshot["train_state"])
        torch.set_rng_state(snapshot["rng"]["torch"])
        if snapshot["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(snapshot["rng"]["cuda"])
        log.info("resumed %s at epoch %d, step %d", self.run_dir, self.state.epoch, self.state.step)
        return snapshot.get("wandb_id")


def train(cfg: Config) -> tuple[Path, dict[str, float]]:
    trainer = Trainer(cfg)
    final = trainer.fit()
    return trainer.run_dir, final
