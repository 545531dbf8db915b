"""The training loop as a spine: build, (restore,) then epochs of train, evaluate, checkpoint.

The parts live in their own modules: what a run builds (engine/setup.py), what a checkpoint holds
and where it goes (engine/snapshot.py), the EMA (engine/ema.py) and unfreezing (engine/freeze.py)
as components whose state a checkpoint holds, one optimizer step (engine/step.py), signals
(engine/preemption.py) and the work after the last evaluation (engine/finish.py). The ordering
that matters is written out here: the restore before the DDP wrap (DDP broadcasts rank 0's
weights), the DDP re-wrap after the backbone unfreezes, rank 0's buffers broadcast before every
evaluation (the ones it saves), and, under ``foodmtl train``, the checkpointing signal handler in
place before the run folder is claimed.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

from torch.nn.parallel import DistributedDataParallel as DDP

from foodmtl.config import Config, to_dict
from foodmtl.engine.checkpoint import load_checkpoint
from foodmtl.engine.distributed import (DistInfo, broadcast_buffers, broadcast_object, cleanup, init_distributed,
                                        sum_over_ranks)
from foodmtl.engine.ema import Ema, model_state
from foodmtl.engine.evaluate import evaluate
from foodmtl.engine.finish import FinishedRun, log_checkpoints
from foodmtl.engine.freeze import Unfreezing, build_freezer
from foodmtl.engine.inference import require_same_tasks, task_table
from foodmtl.engine.optim import warmup_cosine  # noqa: F401  (tests read the schedule from here)
from foodmtl.engine.overlays import save_overlays
from foodmtl.engine.preemption import PreemptionFlag, clear_marker, stop_message, write_marker
from foodmtl.engine.resume import StartPlan, plan_start
from foodmtl.engine.records import evaluation_record, step_record, summary_record
from foodmtl.engine.setup import (build_loaders, build_objective, build_optimization, open_run, set_seed,
                                  started_config, write_eval_list)
from foodmtl.engine.snapshot import Checkpoints, TrainState, restore, rng_state, scored
from foodmtl.engine.step import StepRunner
from foodmtl.errors import PREEMPTED, Preempted, exit_code
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tasks import task_units
from foodmtl.tracking.epoch_meter import EpochMeter
from foodmtl.tracking.progress import progress
from foodmtl.tracking.provenance import provenance

log = logging.getLogger(__name__)
AFTER_TRAINING = (save_overlays, log_checkpoints)  # rank 0, in order, after the last evaluation


class Trainer:
    def __init__(self, cfg: Config, overrides: Sequence[str] = ()):
        """``overrides``: the ``key=value`` items given; a resume applies only these to the
        checkpoint's saved config (see engine/resume.py)."""
        self.info: DistInfo = init_distributed(cfg.train.device, cfg.train.cudnn_benchmark)
        self.plan: StartPlan = broadcast_object(plan_start(cfg, overrides, self.info.device) if self.info.is_main
                                                else None, self.info)
        self.cfg = started_config(self.plan.cfg, self.info.device)
        set_seed(self.cfg.train.seed)
        self._build()
        wandb_id = self._restore(load_checkpoint(self.plan.checkpoint)) if self.plan.checkpoint else None
        self.preemption = PreemptionFlag()
        self.preemption.take_over()  # under foodmtl train: from the first write on, a signal stops at a checkpoint
        self._open(wandb_id)
        self.ddp = DDP(self.objective) if self.info.world > 1 else None  # after the restore: DDP sends rank 0's
        self.step_runner = StepRunner(self.cfg, self.objective, self.ddp, self.optimizer, self.scheduler,
                                      self.optimization.scaler, self.info)

    def _build(self) -> None:
        """Data, model, EMA, freezing, optimizer (engine/setup.py), in the order that matters."""
        cfg = self.cfg
        loaders = build_loaders(cfg, self.info)
        self.tasks, self.train_loader, self.eval_loader = loaders.tasks, loaders.train, loaders.eval
        self.test_loader = loaders.test
        self.objective, self.init_report = build_objective(cfg, self.tasks, self.info, bool(self.plan.checkpoint))
        freezer = build_freezer(self.objective, cfg)  # before the optimizer: frozen weights get no group
        self.ema = Ema(self.objective, cfg.train.ema_decay)
        if cfg.train.compile:  # after the EMA's copy; in place, before the DDP wrap; state_dict keys stay unchanged
            self.objective.model.compile()
        self.optimization = build_optimization(self.objective, cfg, len(self.train_loader), self.info.device)
        self.optimizer, self.scheduler = self.optimization.optimizer, self.optimization.scheduler
        self.unfreezing = Unfreezing(freezer, cfg, self.optimizer, self.scheduler)
        self.state, self.last_loss = TrainState(), float("nan")
        self.skipped_here = 0  # unreadable images on this rank since the counts were last summed

    def _open(self, wandb_id: str | None) -> None:
        """The run folder, its tracker and its checkpoints folder: the run's first writes."""
        restored_at = (self.state.step, self.state.epoch)
        self.run_dir, self.tracker = open_run(self.cfg, self.plan, self.info, restored_at, wandb_id)
        self.checkpoints = Checkpoints(self.run_dir / "checkpoints", self.cfg.train.keep_checkpoints)
        if self.info.is_main:
            write_eval_list(self.run_dir, self.cfg.data.eval_split, self.eval_loader.dataset)
            if self.test_loader is not None:
                write_eval_list(self.run_dir, self.cfg.data.test_split, self.test_loader.dataset)
        if self.init_report:
            self.tracker.summary({"init_from": self.init_report})

    # ---- the run ----------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        self.preemption.install()
        code = 0
        try:
            if self.info.is_main:
                clear_marker(self.run_dir)
            final = self._train_and_evaluate()
            if self.info.is_main:
                finished = FinishedRun(self.cfg, self.ema.reported, self.eval_loader.dataset, self.run_dir,
                                       self.tracker, self.state.step, self.info.device)
                for work in AFTER_TRAINING:
                    work(finished)
            test = self._test()
            self._sync_counts()
            self.tracker.summary({**provenance(self.info.world), **summary_record(final, self.state), **test,
                                  "units": task_units(self.tasks)})
            return final
        except BaseException as exc:
            code = exit_code(exc)
            raise
        finally:
            self.tracker.finish(code)  # W&B records the code the process ends with
            cleanup()
            self.preemption.restore()  # last: a signal while W&B finishes must not kill the process

    def _train_and_evaluate(self) -> dict[str, float]:
        final: dict[str, float] = {}
        while self.state.epoch < self.cfg.train.epochs and not self.done():
            self.train_epoch()
            final = self.evaluate_and_checkpoint()
            self._stop_if_signalled(saved=True)  # a signal during the evaluation: its checkpoint is on disk
            self.state.epoch += 1
            self.state.batch_in_epoch = 0
        self.finished_before = not final and self.plan.in_place  # a finished run resumed: its records stand
        if not final:  # nothing left to train: report the restored model; a new run also saves it
            final = self._evaluate()[0] if self.plan.in_place else self.evaluate_and_checkpoint(epoch_done=False)
            self._stop_if_signalled(saved=True)
        return final

    def done(self) -> bool:
        return bool(self.cfg.train.max_steps) and self.state.step >= self.cfg.train.max_steps

    # ---- training ---------------------------------------------------------------------------
    def train_epoch(self) -> None:
        """Optimizer steps over windows of ``train.accum_steps`` loader batches."""
        self._unfreeze_when_due()
        self.objective.train()
        loader = self.train_loader
        loader.sampler.set_epoch(self.state.epoch, self.state.batch_in_epoch * self.cfg.data.batch_size)
        bar = progress(total=len(loader), desc=f"epoch {self.state.epoch + 1}/{self.cfg.train.epochs}",
                       enabled=self.info.is_main and self.cfg.train.progress)
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
        if not self.unfreezing.due(self.state.epoch):
            return
        self.unfreezing.unfreeze()
        self.state.unfrozen = True
        if self.ddp is not None:  # DDP reduces only the parameters that required a gradient when it was built
            self.ddp = self.step_runner.ddp = DDP(self.objective)
        log.info("epoch %d: the backbone joins training (train.unfreeze_at=%d)", self.state.epoch + 1,
                 self.cfg.train.unfreeze_at)

    def train_step(self, window: list) -> None:
        result = self.step_runner.run(window, self.state.step)
        if result.skipped:
            self.state.nonfinite_skipped += 1
            return
        self.state.step += 1
        self.ema.update(self.objective.model, step=self.state.step)
        self.last_loss = result.total
        self.meter.add(sum(len(b.images) for b in window), result.total)
        if self.state.step % self.cfg.train.log_every == 0:
            record = step_record(result, self.scheduler.get_last_lr()[0], self.state.epoch)
            self.tracker.log(record, self.state.step)
        if result.diagnostics:
            self.tracker.log(result.diagnostics, self.state.step)

    def _step_boundary(self) -> None:
        every = self.cfg.train.checkpoint_every
        if every and self.state.step % every == 0:
            self._sync_counts()
            if self.info.is_main:
                snapshot = self._snapshot()
                self.checkpoints.save("last.pt", snapshot)
                self.checkpoints.save_numbered(self.state.step, snapshot)
        self._stop_if_signalled(saved=False)

    def _stop_if_signalled(self, saved: bool) -> None:
        """After a signal every rank agrees on: last.pt (unless ``saved`` just now), after a preemption
        (not Ctrl-C) the marker a launcher requeues on, one line; then every rank exits with its code."""
        code = self.preemption.agreed(self.info)
        if not code:
            return
        self._sync_counts()
        if self.info.is_main:
            last = self.checkpoints.folder / "last.pt"
            if not saved:
                self._save("last.pt")
            if code == PREEMPTED:
                write_marker(self.run_dir, self.state.step, last)
            log.warning(stop_message(code, self.state.step, last, self.run_dir.name))
        broadcast_object(None, self.info)  # no rank exits (torchrun then stops the rest) before the save
        raise Preempted(code)

    def _note_skipped(self, paths: list[str]) -> None:
        if paths:
            self.skipped_here += len(paths)
            log.warning("skipped %d sample(s): %s", len(paths), "; ".join(paths[:3]))

    def _sync_counts(self) -> None:
        """Fold every rank's unreadable-image count into the state (a collective: all ranks call it
        at the same points), so checkpoints and the summary hold the total over ranks."""
        self.state.skipped += sum_over_ranks(self.skipped_here, self.info)
        self.skipped_here = 0

    # ---- evaluation -------------------------------------------------------------------------
    def _evaluate(self) -> tuple[dict[str, float], int, dict[str, float]]:
        """(the reported model's metrics, unreadable images, the raw weights' metrics when EMA is on,
        else {}). Every rank scores with rank 0's buffers, the ones the checkpoint saves."""
        broadcast_buffers(self.objective, self.info)
        metrics, skipped = self._score(self.objective.model)
        if not self.ema.on:
            return metrics, skipped, {}
        broadcast_buffers(self.ema.module, self.info)
        return self._score(self.ema.module)[0], skipped, metrics

    def _score(self, model: MultiTaskModel) -> tuple[dict[str, float], int]:
        return evaluate(model, self.eval_loader, self.info, self.cfg.train.amp, self.cfg.model.channels_last,
                        show_progress=self.cfg.train.progress)

    def _test(self) -> dict[str, dict]:
        """best.pt, the model chosen on ``data.eval_split``, scored once on ``data.test_split`` (every
        rank, each on its shard): summary.json's ``test`` (the metrics, also logged as ``test/...`` at the
        last step, unless a finished run was resumed: it logged them then) and ``tested`` (which checkpoint, step, split); {} where there is no test split."""
        if self.test_loader is None:
            return {}
        broadcast_object(None, self.info)  # rank 0 has written best.pt
        best = load_checkpoint(self.checkpoints.folder / "best.pt", self.info.device)
        model = self.ema.reported
        model.load_state_dict(model_state(best["objective"]))
        metrics, skipped = evaluate(model, self.test_loader, self.info, self.cfg.train.amp,
                                    self.cfg.model.channels_last, show_progress=self.cfg.train.progress)
        if not self.finished_before:
            self.tracker.log({**{f"test/{k}": v for k, v in metrics.items()}, "data/skipped_test": skipped},
                             self.state.step)
        log.info("test split %s: best.pt of step %d scored", self.cfg.data.test_split, best["step"])
        return {"test": metrics, "tested": {"checkpoint": "best.pt", "step": best["step"], "epoch": best["epoch"],
                                            "split": self.cfg.data.test_split}}

    def evaluate_and_checkpoint(self, epoch_done: bool = True) -> dict[str, float]:
        """``epoch_done``: the checkpoint marks the epoch as finished, so a resume starts the next one."""
        metrics, skipped, raw = self._evaluate()
        self._sync_counts()
        meter = self.meter if epoch_done else None
        record = evaluation_record(metrics, raw, self.state.epoch, self.state.skipped, skipped, meter)
        record.update(self.step_runner.diagnostics.at_evaluation(self.tracker.wandb, self.state.step))
        self.tracker.log(record, self.state.step)
        if epoch_done:
            self.tracker.epoch(self.state.epoch, self.meter.record(), metrics, self.scheduler.get_last_lr()[0])
        score, is_best = scored(metrics, self.cfg.train.best_metric, self.state.best)
        if is_best:
            self.state.best = score
        if self.info.is_main:
            self._report_epoch(score, epoch_done)
            finished = dataclasses.replace(self.state, epoch=self.state.epoch + int(epoch_done), batch_in_epoch=0)
            snapshot = self._snapshot(finished)
            self.checkpoints.save("last.pt", snapshot)
            if is_best:
                self.checkpoints.save("best.pt", snapshot, metrics)
        return metrics

    def _report_epoch(self, score: float | None, epoch_done: bool) -> None:
        trained = ("nothing left to train" if not epoch_done else f"train loss {self.meter.mean_loss:.4f}"
                   if self.meter.steps else "no step left in the epoch after the resume")
        scores = "" if score is None else f", {self.cfg.train.best_metric} {score:.4f}"
        log.info("epoch %d/%d, step %d: %s%s", self.state.epoch + int(epoch_done), self.cfg.train.epochs,
                 self.state.step, trained, scores)

    # ---- checkpoints ------------------------------------------------------------------------
    def _save(self, name: str, state: TrainState | None = None, metrics: dict[str, float] | None = None) -> None:
        """A full checkpoint of ``state`` (default: now) as ``name``; with ``metrics`` the weights only."""
        self.checkpoints.save(name, self._snapshot(state), metrics)

    def _snapshot(self, state: TrainState | None = None) -> dict:
        """A full, resumable checkpoint: each part's entries (engine/snapshot.py lists them)."""
        return {**self.ema.state_dict(), **self.optimization.state_dict(),
                "train_state": dataclasses.asdict(state or self.state), "rng": rng_state(),
                "config": to_dict(self.cfg) | {"run": self.run_dir.name, "resume": None},
                "tasks": task_table(self.tasks), "wandb_id": getattr(self.tracker.wandb, "run_id", None),
                "init_from": self.init_report}

    def _restore(self, snapshot: dict) -> str | None:
        """Everything of a full checkpoint; returns the W&B run id to continue (None for a new run)."""
        require_same_tasks(snapshot.get("tasks") or [], self.tasks, "resume on the data it was trained on")
        # Unfreezing first: the saved optimizer's groups held the backbone if it had joined.
        self.state = restore(snapshot, (self.unfreezing, self.ema, self.optimization), self.plan.checkpoint)
        self.init_report = snapshot.get("init_from")
        log.info("resumed %s at epoch %d, step %d", self.plan.checkpoint, self.state.epoch, self.state.step)
        if not self.plan.in_place:  # a new run: its best.pt is the best of its own evaluations
            self.state.best = TrainState().best
            return None
        return snapshot.get("wandb_id")


def train(cfg: Config, overrides: Sequence[str] = ()) -> tuple[Path, dict[str, float]]:
    trainer = Trainer(cfg, overrides)
    final = trainer.fit()
    return trainer.run_dir, final
