"""The training loop, readable top to bottom: build, (resume,) then epochs of train + evaluate."""
from __future__ import annotations

import dataclasses
import logging
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from foodmtl.config import Config, ConfigError, save_config, to_dict
from foodmtl.data.builder import build_data, train_loader
from foodmtl.engine.checkpoint import load_checkpoint, save_checkpoint
from foodmtl.engine.distributed import DistInfo, broadcast_object, cleanup, init_distributed, sum_over_ranks
from foodmtl.engine.evaluate import eval_loader, evaluate, resolve_amp
from foodmtl.engine.inference import require_same_tasks, task_table
from foodmtl.engine.objective import Objective
from foodmtl.engine.overlays import mask_overlays, wandb_mask_images
from foodmtl.engine.preemption import Preempted, PreemptionFlag
from foodmtl.engine.run_dir import new_run_dir, resume_checkpoint
from foodmtl.engine.step import StepResult, StepRunner
from foodmtl.models.multitask import build_model
from foodmtl.registry import unknown_name_error
from foodmtl.tasks import TaskSpec
from foodmtl.tracking import NullTracker, Tracker
from foodmtl.tracking.provenance import provenance
from foodmtl.tracking.wandb_run import WandbWriter
from foodmtl.weighting import build_weighting

log = logging.getLogger(__name__)


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


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0      # batches of this epoch already trained (resume point)
    best: float = -math.inf
    skipped: int = 0             # unreadable images
    nonfinite_skipped: int = 0   # optimizer steps skipped for a NaN/Inf loss (train.on_nonfinite=skip)


class Trainer:
    def __init__(self, cfg: Config):
        self.info: DistInfo = init_distributed(cfg.train.device)
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, amp=resolve_amp(cfg.train.amp,
                                                                                            self.info.device)))
        self.cfg = cfg
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
                                         self.info.rank, self.info.world, self.info.device.type == "cuda",
                                         data.train_weights)
        self.eval_loader = eval_loader(data.eval, cfg.data.eval_batch_size, cfg.data.num_workers, self.info)
        self.objective = self._build_objective()
        self.optimizer = torch.optim.AdamW(param_groups(self.objective, cfg.optim.weight_decay), lr=cfg.optim.lr)
        steps_per_epoch = math.ceil(len(self.train_loader) / cfg.train.accum_steps)
        self.total_steps = cfg.train.max_steps or cfg.train.epochs * steps_per_epoch
        warmup = int(cfg.optim.warmup_epochs * steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(self.total_steps, warmup))
        self.scaler = torch.amp.GradScaler(self.info.device.type, enabled=cfg.train.amp == "fp16")
        self.state = TrainState()
        wandb_id = self._restore(load_checkpoint(resume)) if resume else None
        # Wrapped after restoring so DDP broadcasts the restored weights from rank 0.
        self.ddp = DDP(self.objective) if self.info.world > 1 else None
        self.step_runner = StepRunner(cfg, self.objective, self.ddp, self.optimizer, self.scheduler,
                                      self.scaler, self.info)
        self.last_loss = float("nan")
        self.tracker = self._make_tracker(wandb_id)
        self.preemption = PreemptionFlag()

    def _build_objective(self) -> Objective:
        cfg = self.cfg
        model = build_model(cfg.model, self.tasks)
        if cfg.model.sync_bn and self.info.world > 1:
            if self.info.device.type == "cuda":
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            else:
                log.warning("model.sync_bn ignored: SyncBatchNorm needs CUDA; BatchNorm stays per-rank")
        weighting = build_weighting(cfg.weighting.name, [t.name for t in self.tasks], cfg.weighting.options)
        if cfg.train.amp == "fp16" and weighting.gradient_based and not weighting.scale_equivariant:
            raise ConfigError(f"weighting.name={cfg.weighting.name} is not scale-equivariant, so fp16's loss "
                              "scaling would change its update; use train.amp=bf16 or none")
        objective = Objective(model, weighting, cfg.optim.label_smoothing).to(self.info.device)
        if cfg.model.channels_last:
            objective.to(memory_format=torch.channels_last)
        if cfg.train.compile:
            model.compile()  # in place, before the DDP wrap; state_dict keys stay unchanged
        return objective

    def _make_tracker(self, wandb_id: str | None):
        if not self.info.is_main:
            return NullTracker()
        resolved = dataclasses.replace(self.cfg, run=self.run_dir.name, resume=None)
        save_config(resolved, self.run_dir / "config.yaml")
        t = self.cfg.tracking
        config = to_dict(resolved) | provenance(self.info.world)
        wandb = WandbWriter(t.wandb, self.run_dir, self.run_dir.name, config, t.project, t.entity,
                            t.group or self.cfg.experiment, t.tags, job_type=t.job_type, run_id=wandb_id)
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
            if not final:  # resumed after its last epoch: report the checkpoint's metrics again
                final, _ = evaluate(self.objective.model, self.eval_loader, self.info, self.cfg.train.amp,
                                    self.cfg.model.channels_last)
            self.save_overlays()
            self.tracker.summary({**provenance(self.info.world), "final": final, "best": self.state.best, "steps": self.state.step,
                                  "epochs": self.state.epoch, "skipped_images": self.state.skipped,
                                  "nonfinite_skipped": self.state.nonfinite_skipped})
            return final
        finally:
            self.preemption.restore()
            self.tracker.finish()
            cleanup()

    def save_overlays(self) -> None:
        """Ground-truth | predicted mask overlays of a few eval images (rank 0; PNG and W&B)."""
        if not self.info.is_main or self.cfg.train.overlays <= 0:
            return
        written = mask_overlays(self.objective.model, self.eval_loader.dataset, self.run_dir / "overlays",
                                self.info.device, self.cfg.train.overlays)
        wandb = self.tracker.wandb
        if written and wandb is not None and wandb.run is not None:
            classes = next(t.classes for t in self.tasks if t.kind == "segmentation")
            wandb.log_images("eval/overlays", wandb_mask_images(written, list(classes)), self.state.step)

    def done(self) -> bool:
        return bool(self.cfg.train.max_steps) and self.state.step >= self.cfg.train.max_steps

    def train_epoch(self) -> None:
        """Optimizer steps over windows of ``train.accum_steps`` loader batches."""
        self.objective.train()
        loader = self.train_loader
        loader.sampler.set_epoch(self.state.epoch, self.state.batch_in_epoch * self.cfg.data.batch_size)
        bar = tqdm(total=len(loader), desc=f"epoch {self.state.epoch + 1}/{self.cfg.train.epochs}",
                   disable=not (self.info.is_main and self.cfg.train.progress and sys.stderr.isatty()),
                   leave=False)
        window, consumed = [], 0
        for i, batch in enumerate(loader):
            self._note_skipped(batch.skipped)
            consumed += 1
            if batch.targets:
                window.append(batch)
            bar.update()
            if consumed < self.cfg.train.accum_steps and i < len(loader) - 1:
                continue
            if window:
                self.train_step(window)
                bar.set_postfix(loss=f"{self.last_loss:.3f}")
            self.state.batch_in_epoch += consumed
            window, consumed = [], 0
            self._step_boundary()
            if self.done():
                break
        bar.close()
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

    def train_step(self, window: list) -> None:
        result = self.step_runner.run(window, self.state.step)
        if result.skipped:
            self.state.nonfinite_skipped += 1
            return
        self.state.step += 1
        self.last_loss = result.total
        if self.state.step % self.cfg.train.log_every == 0:
            self.tracker.log(self._step_record(result), self.state.step)

    def _step_record(self, result: StepResult) -> dict[str, float]:
        record = {"train/loss": result.total, **{f"train/loss/{t}": v for t, v in result.losses.items()},
                  "lr": self.scheduler.get_last_lr()[0], "epoch": self.state.epoch}
        record.update({f"weight/{t}": w for t, w in result.weights.items()})
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
        if self.info.is_main:
            log.info("epoch %d/%d, step %d: train loss %.4f, %s %.4f", self.state.epoch + 1, self.cfg.train.epochs,
                     self.state.step, self.last_loss, self.cfg.train.best_metric, score)
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
        require_same_tasks(snapshot.get("tasks") or [], self.tasks, "resume on the data it was trained on")
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
