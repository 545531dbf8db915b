"""The training loop, readable top to bottom: build, (resume,) then epochs of train + evaluate."""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from foodmtl.config import Config, save_config, to_dict


from foodmtl.errors import ConfigError
from foodmtl.data.builder import build_data, train_loader
from foodmtl.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, weights_only
from foodmtl.engine.distributed import (DistInfo, broadcast_buffers, broadcast_object, cleanup, init_distributed,
                                        sum_over_ranks)
from foodmtl.engine.ema import build_ema, model_state, reported_state
from foodmtl.engine.evaluate import eval_loader, evaluate, resolve_amp
from foodmtl.engine.freeze import Freezer
from foodmtl.engine.inference import require_same_tasks, task_table
from foodmtl.engine.init_from import init_from
from foodmtl.engine.objective import Objective
from foodmtl.engine.optim import backbone_groups, build_optimizer, join, param_groups, warmup_cosine
from foodmtl.engine.overlays import mask_overlays, wandb_mask_images
from foodmtl.engine.preemption import PreemptionFlag, clear_marker, stop_message, write_marker
from foodmtl.engine.preflight import require_metric, require_training_steps, require_wandb_mode
from foodmtl.engine.resume import StartPlan, plan_start
from foodmtl.engine.run_dir import claim_run_dir
from foodmtl.engine.step import StepResult, StepRunner
from foodmtl.errors import PREEMPTED as EXIT_PREEMPTED
from foodmtl.errors import Preempted, exit_code
from foodmtl.models.multitask import MultiTaskModel, build_model
from foodmtl.utils.registry import unknown_name_error
from foodmtl.tasks import get_kind, loss_owners, metric_direction, task_options, task_units
from foodmtl.tracking import NullTracker, Tracker
from foodmtl.tracking.epoch_meter import EpochMeter
from foodmtl.tracking.provenance import provenance
from foodmtl.tracking.wandb_run import WandbWriter
from foodmtl.weighting import build_weighting

log = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def improves(score: float, best: float | None, direction: str) -> bool:
    """Whether ``score`` beats ``best`` (None or infinite: nothing yet) in the metric's direction."""
    if best is None or not math.isfinite(best):
        return True
    return score > best if direction == "max" else score < best


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0      # batches of this epoch already trained (resume point)
    best: float | None = None    # best value of train.best_metric so far, in its direction
    skipped: int = 0             # unreadable images
    nonfinite_skipped: int = 0   # optimizer steps skipped for a NaN/Inf loss (train.on_nonfinite=skip)
    unfrozen: bool = False       # train.unfreeze_at reached: the frozen backbone joined the optimizer


class Trainer:
    def __init__(self, cfg: Config, overrides: Sequence[str] = ()):
        """``overrides``: the ``key=value`` items given; a resume applies only these to the
        checkpoint's saved config (see engine/resume.py)."""
        self.info: DistInfo = init_distributed(cfg.train.device)
        plan: StartPlan = broadcast_object(plan_start(cfg, overrides, self.info.device) if self.info.is_main
                                           else None, self.info)
        # launch_dir: where the config's relative paths (data.root) were given from, for eval/predict elsewhere
        cfg = dataclasses.replace(plan.cfg, launch_dir=plan.cfg.launch_dir or os.getcwd(), train=dataclasses.replace(
            plan.cfg.train, amp=resolve_amp(plan.cfg.train.amp, self.info.device)))
        self.cfg, self.plan = cfg, plan
        set_seed(cfg.train.seed)

        data = build_data(cfg.data, cfg.tasks, cfg.train.seed, task_options(cfg))
        data.print_notes(self.info.is_main)
        self.tasks = data.tasks
        self.train_loader = train_loader(data.train, cfg.data.batch_size, cfg.data.num_workers, cfg.train.seed,
                                         self.info.rank, self.info.world, self.info.device.type == "cuda",
                                         data.train_weights)
        require_training_steps(len(self.train_loader), len(data.train), cfg, self.info.world)
        require_metric(cfg.train.best_metric, self.tasks)
        require_wandb_mode(cfg.tracking.wandb)
        self.eval_loader = eval_loader(data.eval, cfg.data.eval_batch_size, cfg.data.num_workers, self.info)
        self.init_report: dict | None = None  # what model.init_from loaded (engine/init_from.py)
        self.objective = self._build_objective()
        self.frozen = self._freeze()
        self.ema = build_ema(self.objective.model, cfg.train.ema_decay)
        if cfg.train.compile:  # after the EMA's copy; in place, before the DDP wrap; state_dict keys stay unchanged
            self.objective.model.compile()
        self.optimizer = build_optimizer(param_groups(self.objective, cfg.model.backbone, cfg.optim), cfg.optim)
        steps_per_epoch = math.ceil(len(self.train_loader) / cfg.train.accum_steps)
        self.total_steps = cfg.train.max_steps or cfg.train.epochs * steps_per_epoch
        warmup = int(cfg.optim.warmup_epochs * steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(self.total_steps, warmup))
        self.scaler = torch.amp.GradScaler(self.info.device.type, enabled=cfg.train.amp == "fp16")
        self.state = TrainState()
        self.skipped_here = 0  # unreadable images on this rank since the counts were last summed
        wandb_id = self._restore(load_checkpoint(plan.checkpoint)) if plan.checkpoint else None
        self.run_dir = self._claim_run_dir()
        # Wrapped after restoring so DDP broadcasts the restored weights from rank 0.
        self.ddp = DDP(self.objective) if self.info.world > 1 else None
        self.step_runner = StepRunner(cfg, self.objective, self.ddp, self.optimizer, self.scheduler,
                                      self.scaler, self.info)
        self.last_loss = float("nan")
        self.tracker = self._make_tracker(wandb_id)
        if self.init_report:
            self.tracker.summary({"init_from": self.init_report})
        self.preemption = PreemptionFlag()

    def _build_objective(self) -> Objective:
        cfg = self.cfg
        model = build_model(self._model_config(), self.tasks)
        if cfg.model.init_from and not self.plan.checkpoint:  # a resume restores every weight itself
            self.init_report = init_from(model, cfg.model.init_from, cfg.model.backbone,
                                         (cfg.model.decoder, cfg.model.decoder_options))
        if cfg.model.sync_bn and self.info.world > 1:
            if self.info.device.type == "cuda":
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            else:
                log.warning("model.sync_bn ignored: SyncBatchNorm needs CUDA; BatchNorm stays per-rank")
        owners = loss_owners(self.tasks)  # a task weighted as several losses (instances.separate_losses)
        likelihood = {t.name: get_kind(t.kind).likelihood for t in self.tasks}
        weighting = build_weighting(cfg.weighting.name, list(owners), cfg.weighting.options,
                                    {loss: likelihood[task] for loss, task in owners.items()})
        if cfg.train.amp == "fp16" and weighting.gradient_based and not weighting.scale_equivariant:
            raise ConfigError(f"weighting.name={cfg.weighting.name} is not scale-equivariant, so fp16's loss "
                              "scaling would change its update; use train.amp=bf16 or none")
        objective = Objective(model, weighting).to(self.info.device)
        if cfg.model.channels_last:
            objective.to(memory_format=torch.channels_last)
        return objective

    def _model_config(self):
        """The model config, without hub or file weights when ``model.init_from`` replaces them."""
        model = self.cfg.model
        if model.init_from and (model.pretrained or model.pretrained_file):
            log.info("model.init_from replaces model.pretrained / model.pretrained_file")
            return dataclasses.replace(model, pretrained=False, pretrained_file=None)
        return model

    def _freeze(self) -> Freezer:
        """``model.freeze`` applied to the backbone (engine/freeze.py)."""
        cfg = self.cfg
        if cfg.model.freeze == "backbone" and self.objective.weighting.gradient_based:
            raise ConfigError(f"model.freeze=backbone leaves no shared parameter for weighting.name="
                              f"{cfg.weighting.name} to combine task gradients on; freeze stages:N, or use a "
                              "loss-level strategy")
        return Freezer(self.objective.model.backbone.net, cfg.model.backbone, cfg.model.freeze)

    def _unfreeze(self) -> None:
        """The frozen parameters join the optimizer in the groups they would have had (engine/optim.py)."""
        released = {id(p) for p in self.frozen.release()}
        groups = backbone_groups(self.objective.model.backbone.net, self.cfg.model.backbone, self.cfg.optim)
        joining = [{**g, "params": [p for p in g["params"] if id(p) in released]} for g in groups]
        join(self.optimizer, self.scheduler, [g for g in joining if g["params"]])
        self.state.unfrozen = True

    def _claim_run_dir(self) -> Path:
        """Rank 0 claims a new folder (or takes resume=auto's) once bad input can no longer fail the start."""
        run_dir = None
        if self.info.is_main:
            run_dir = self.plan.run_dir or str(claim_run_dir(self.cfg))
            if self.plan.checkpoint and not self.plan.in_place:
                log.info("continuing %s (step %d) into the new run %s; the source run is left as it is",
                         self.plan.checkpoint, self.state.step, run_dir)
        return Path(broadcast_object(run_dir, self.info))

    def _make_tracker(self, wandb_id: str | None):
        if not self.info.is_main:
            return NullTracker()
        resolved = dataclasses.replace(self.cfg, run=self.run_dir.name, resume=None)
        save_config(resolved, self.run_dir / "config.yaml")
        t = self.cfg.tracking
        config = to_dict(resolved) | provenance(self.info.world)
        wandb = WandbWriter(t.wandb, self.run_dir, self.run_dir.name, config, t.project, t.entity,
                            t.group or self.cfg.experiment, t.tags, job_type=t.job_type, run_id=wandb_id)
        in_place = self.plan.in_place
        return Tracker(self.run_dir, wandb, resume_step=self.state.step if in_place else None,
                       resume_epoch=self.state.epoch if in_place else None)

    # ---- the loop -------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        self.preemption.install()
        code = 0
        try:
            if self.info.is_main:
                clear_marker(self.run_dir)
            final: dict[str, float] = {}
            while self.state.epoch < self.cfg.train.epochs and not self.done():
                self.train_epoch()
                final = self.evaluate_and_checkpoint()
                self.state.epoch += 1
                self.state.batch_in_epoch = 0
            if not final:  # nothing left to train: report the restored model; a new run also saves it
                final = self._evaluate()[0] if self.plan.in_place else self.evaluate_and_checkpoint(epoch_done=False)
            self.save_overlays()
            self.log_checkpoints()
            self._sync_counts()
            self.tracker.summary({**provenance(self.info.world), "final": final, "best": self.state.best, "steps": self.state.step,
                                  "epochs": self.state.epoch, "skipped_images": self.state.skipped,
                                  "nonfinite_skipped": self.state.nonfinite_skipped,
                                  "units": task_units(self.tasks)})
            return final
        except BaseException as exc:
            code = exit_code(exc)
            raise
        finally:
            self.tracker.finish(code)  # W&B records the code the process ends with
            cleanup()
            self.preemption.restore()  # last: a signal while W&B finishes must not kill the process

    def save_overlays(self) -> None:
        """Ground-truth | predicted mask overlays of a few eval images (rank 0; PNG and W&B)."""
        if not self.info.is_main or self.cfg.train.overlays <= 0:
            return
        written = mask_overlays(self.reported_model, self.eval_loader.dataset, self.run_dir / "overlays",
                                self.info.device, self.cfg.train.overlays)
        wandb = self.tracker.wandb
        if written and wandb is not None and wandb.run is not None:
            classes = next(t.classes for t in self.tasks if get_kind(t.kind).dense)
            wandb.log_images("eval/overlays", wandb_mask_images(written, list(classes)), self.state.step)

    def log_checkpoints(self) -> None:
        """best.pt and last.pt as versions of the W&B model artifact (``tracking.log_checkpoints``)."""
        folder = self.run_dir / "checkpoints"
        if self.cfg.tracking.log_checkpoints:
            for name, alias in (("best.pt", "best"), ("last.pt", "last")):  # last.pt last: W&B's "latest"
                if (folder / name).is_file():
                    self.tracker.log_checkpoint(folder / name, [alias])

    def done(self) -> bool:
        return bool(self.cfg.train.max_steps) and self.state.step >= self.cfg.train.max_steps

    @property
    def reported_model(self) -> MultiTaskModel:
        """The model the run's metrics and checkpoints describe: the EMA's when it is on."""
        return self.objective.model if self.ema is None else self.ema.module

    def train_epoch(self) -> None:
        """Optimizer steps over windows of ``train.accum_steps`` loader batches."""
        self._unfreeze_when_due()
        self.objective.train()
        loader = self.train_loader
        loader.sampler.set_epoch(self.state.epoch, self.state.batch_in_epoch * self.cfg.data.batch_size)
        bar = tqdm(total=len(loader), desc=f"epoch {self.state.epoch + 1}/{self.cfg.train.epochs}",
                   disable=not (self.info.is_main and self.cfg.train.progress and sys.stderr.isatty()),
                   leave=False)
        window, consumed = [], 0
        self.meter = EpochMeter(self.info.world)  # this epoch's mean loss and images/s (summary.csv)
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
        self.meter.stop()
        self.objective.weighting.end_epoch()

    def _unfreeze_when_due(self) -> None:
        at = self.cfg.train.unfreeze_at
        if not (at and self.frozen.active and self.state.epoch >= at):
            return
        self._unfreeze()
        if self.ddp is not None:  # DDP reduces only the parameters that required a gradient when it was built
            self.ddp = DDP(self.objective)
            self.step_runner.ddp = self.ddp
        log.info("epoch %d: the backbone joins training (train.unfreeze_at=%d)", self.state.epoch + 1, at)

    def _step_boundary(self) -> None:
        every = self.cfg.train.checkpoint_every
        if every and self.state.step % every == 0:
            self._sync_counts()
            if self.info.is_main:
                self._save("last.pt")
                self._save_numbered()
        code = self.preemption.agreed(self.info)
        if code:
            self._sync_counts()
            if self.info.is_main:
                self._save_before_stop(code)
            broadcast_object(None, self.info)  # no rank exits (torchrun then stops the rest) before the save
            raise Preempted(code)

    def _save_before_stop(self, code: int) -> None:
        """last.pt; after a preemption (not Ctrl-C) the marker a launcher requeues on; one line."""
        last = self.run_dir / "checkpoints" / "last.pt"
        self._save("last.pt")
        if code == EXIT_PREEMPTED:
            write_marker(self.run_dir, self.state.step, last)
        log.warning(stop_message(code, self.state.step, last, self.run_dir.name))

    def train_step(self, window: list) -> None:
        result = self.step_runner.run(window, self.state.step)
        if result.skipped:
            self.state.nonfinite_skipped += 1
            return
        self.state.step += 1
        if self.ema is not None:
            self.ema.update(self.objective.model, step=self.state.step)
        self.last_loss = result.total
        self.meter.add(sum(len(b.images) for b in window), result.total)
        if self.state.step % self.cfg.train.log_every == 0:
            self.tracker.log(self._step_record(result), self.state.step)
        if result.diagnostics:
            self.tracker.log(result.diagnostics, self.state.step)

    def _step_record(self, result: StepResult) -> dict[str, float]:
        record = {"train/loss": result.total, "train/objective": result.objective,
                  **{f"train/loss/{t}": v for t, v in result.losses.items()},
                  "lr": self.scheduler.get_last_lr()[0], "epoch": self.state.epoch}
        record.update({f"weight/{t}": w for t, w in result.weights.items()})
        return record

    def _note_skipped(self, paths: list[str]) -> None:
        if paths:
            self.skipped_here += len(paths)
            log.warning("skipped %d sample(s): %s", len(paths), "; ".join(paths[:3]))

    def _sync_counts(self) -> None:
        """Fold every rank's unreadable-image count into the state (a collective: all ranks call it
        at the same points), so checkpoints and the summary hold the total over ranks."""
        self.state.skipped += sum_over_ranks(self.skipped_here, self.info)
        self.skipped_here = 0

    def _evaluate(self) -> tuple[dict[str, float], int, dict[str, float]]:
        """(the reported model's metrics, unreadable images, the raw weights' metrics when EMA is on,
        else {}). Every rank scores with rank 0's buffers, the ones the checkpoint saves (broadcast_buffers)."""
        broadcast_buffers(self.objective, self.info)
        metrics, skipped = self._score(self.objective.model)
        if self.ema is None:
            return metrics, skipped, {}
        broadcast_buffers(self.ema, self.info)
        return self._score(self.ema.module)[0], skipped, metrics

    def _score(self, model: MultiTaskModel) -> tuple[dict[str, float], int]:
        return evaluate(model, self.eval_loader, self.info, self.cfg.train.amp, self.cfg.model.channels_last,
                        show_progress=self.cfg.train.progress)

    def evaluate_and_checkpoint(self, epoch_done: bool = True) -> dict[str, float]:
        """``epoch_done``: the checkpoint marks the epoch as finished, so a resume starts the next one."""
        epochs_done = self.state.epoch + int(epoch_done)
        metrics, skipped, raw = self._evaluate()
        self._sync_counts()
        record = {f"eval/{k}": v for k, v in metrics.items()}
        record.update({f"eval_raw/{k}": v for k, v in raw.items()})
        record.update({"epoch": self.state.epoch, "data/skipped_train": self.state.skipped,
                       "data/skipped_eval": skipped})
        if epoch_done:
            record.update({"train/epoch_loss": self.meter.mean_loss, "train/images_per_s": self.meter.images_per_s})
        record.update(self.step_runner.diagnostics.at_evaluation(self.tracker.wandb, self.state.step))
        self.tracker.log(record, self.state.step)
        if epoch_done:
            self.tracker.epoch(self.state.epoch, self.meter.record(), metrics, self.scheduler.get_last_lr()[0])
        if self.cfg.train.best_metric not in metrics:
            raise unknown_name_error("train.best_metric", self.cfg.train.best_metric, metrics)
        score = metrics[self.cfg.train.best_metric]
        if self.info.is_main:
            trained = ("nothing left to train" if not epoch_done else f"train loss {self.meter.mean_loss:.4f}"
                       if self.meter.steps else "no step left in the epoch after the resume")
            log.info("epoch %d/%d, step %d: %s, %s %.4f", epochs_done, self.cfg.train.epochs, self.state.step,
                     trained, self.cfg.train.best_metric, score)
        is_best = improves(score, self.state.best, metric_direction(self.cfg.train.best_metric))
        if is_best:
            self.state.best = score
        if self.info.is_main:
            finished = dataclasses.replace(self.state, epoch=epochs_done, batch_in_epoch=0)
            self._save("last.pt", finished)
            if is_best:
                self._save("best.pt", finished, metrics)
        return metrics

    # ---- checkpoints --------------------------------------------------------------------
    def _save(self, name: str, state: TrainState | None = None, metrics: dict[str, float] | None = None) -> None:
        """A full, resumable checkpoint; with ``metrics`` a weights-only one (best.pt: last.pt holds the rest).
        ``objective`` holds the reported weights (EMA's when on, engine/ema.py), ``train_objective`` the raw ones."""
        objective = self.objective.state_dict()
        snapshot = {
            "objective": reported_state(objective, self.ema),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "train_state": dataclasses.asdict(state or self.state),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "config": to_dict(self.cfg) | {"run": self.run_dir.name, "resume": None},
            "tasks": task_table(self.tasks),
            "wandb_id": getattr(self.tracker.wandb, "run_id", None),
            "init_from": self.init_report,
        }
        if self.ema is not None:
            snapshot["train_objective"] = objective
        if metrics is not None:
            snapshot = weights_only(snapshot, metrics)
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
        """Everything of a full checkpoint; returns the W&B run id to continue (None for a new run)."""
        require_same_tasks(snapshot.get("tasks") or [], self.tasks, "resume on the data it was trained on")
        try:
            state = TrainState(**snapshot["train_state"])
            if state.unfrozen and self.frozen.active:  # the optimizer then had the backbone's groups
                self._unfreeze()
            configured = [(g["initial_lr"], g["weight_decay"]) for g in self.optimizer.param_groups]
            # A run without EMA saved its raw weights as objective; one with EMA, under train_objective.
            self.objective.load_state_dict(snapshot.get("train_objective", snapshot["objective"]))
            if self.ema is not None:
                self.ema.module.load_state_dict(model_state(snapshot["objective"]))
            self.optimizer.load_state_dict(snapshot["optimizer"])
            self.scheduler.load_state_dict(snapshot["scheduler"])
            self.scaler.load_state_dict(snapshot["scaler"])
            self.state = state
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{self.plan.checkpoint} does not fit the model and optimizer its config "
                                  f"builds: {exc}") from None
        self._keep_configured_hyperparameters(configured)
        torch.set_rng_state(snapshot["rng"]["torch"])
        if snapshot["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(snapshot["rng"]["cuda"])
        self.init_report = snapshot.get("init_from")
        log.info("resumed %s at epoch %d, step %d", self.plan.checkpoint, self.state.epoch, self.state.step)
        if not self.plan.in_place:  # a new run: its best.pt is the best of its own evaluations
            self.state.best = TrainState().best
            return None
        return snapshot.get("wandb_id")

    def _keep_configured_hyperparameters(self, configured: list[tuple[float, float]]) -> None:
        """A restored optimizer brings the checkpoint's learning rate and weight decay; the config's
        win. They are the same values (so this changes no bit) unless resume_override changed them;
        then the config's schedule goes on from the restored step."""
        self.scheduler.base_lrs = [lr for lr, _ in configured]
        for group, (lr, decay), factor in zip(self.optimizer.param_groups, configured, self.scheduler.lr_lambdas):
            group.update(initial_lr=lr, weight_decay=decay, lr=lr * factor(self.scheduler.last_epoch))


def train(cfg: Config, overrides: Sequence[str] = ()) -> tuple[Path, dict[str, float]]:
    trainer = Trainer(cfg, overrides)
    final = trainer.fit()
    return trainer.run_dir, final
