"""The rank-0 tracking facade: metrics.jsonl + summary.csv + summary.json + W&B, one call each."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from foodmtl.tracking.local import JsonlWriter, read_jsonl, write_json_atomic, write_jsonl_atomic
from foodmtl.tracking.summary_csv import SummaryCsv, epoch_row
from foodmtl.tracking.wandb_run import WandbWriter


class Tracker:
    """``resume_step`` / ``resume_epoch`` (a run resumed in its own folder: its checkpoint's step
    and unfinished epoch): it first drops the metrics.jsonl records logged after that step and
    the evaluations and summary.csv rows of that epoch on (a checkpoint taken at an epoch's last
    step, before its evaluation, is evaluated again), then gives W&B the kept records it lacks, so
    all of them hold the same history before training goes on."""

    def __init__(self, run_dir: Path, wandb: WandbWriter | None, resume_step: int | None = None,
                 resume_epoch: int | None = None):
        self.run_dir = run_dir
        metrics = run_dir / "metrics.jsonl"
        if resume_step is not None and metrics.exists():
            kept = [r for r in read_jsonl(metrics) if before(r, resume_step, resume_epoch)]
            write_jsonl_atomic(metrics, kept)
            if wandb:
                wandb.replay(kept)
        self.jsonl = JsonlWriter(metrics)
        self.epochs = SummaryCsv(run_dir / "summary.csv", resume_epoch)
        self.wandb = wandb
        self.summary_values: dict[str, Any] = {}

    def log(self, record: dict[str, Any], step: int) -> None:
        record = {"step": step, **record}
        self.jsonl.log(record)
        if self.wandb:
            self.wandb.log(record)

    def epoch(self, epoch: int, train: dict[str, float], evals: dict[str, float], lr: float | None) -> None:
        """A summary.csv row (timm's layout, see tracking/summary_csv.py) for a finished epoch."""
        self.epochs.append(epoch_row(epoch, train, evals, lr))

    def log_checkpoint(self, path: Path, aliases: list[str]) -> None:
        """``path`` as a version of the run's W&B model artifact (tracking.log_checkpoints)."""
        if self.wandb:
            self.wandb.log_checkpoint(path, aliases)

    def summary(self, values: dict[str, Any]) -> None:
        self.summary_values.update(values)
        write_json_atomic(self.run_dir / "summary.json", self.summary_values)
        if self.wandb:
            self.wandb.summary(values)

    def finish(self, exit_code: int = 0) -> None:
        """``exit_code``: what the process ends with, recorded by W&B (0 done, 143 preempted, ...)."""
        self.jsonl.close()
        if self.wandb:
            self.wandb.finish(exit_code)


class NullTracker:
    """What every rank but 0 gets: tracking calls that do nothing."""

    wandb = None

    def log(self, record: dict[str, Any], step: int) -> None:
        pass

    def epoch(self, epoch: int, train: dict[str, float], evals: dict[str, float], lr: float | None) -> None:
        pass

    def log_checkpoint(self, path: Path, aliases: list[str]) -> None:
        pass

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


def before(record: dict[str, Any], step: int, epoch: int | None) -> bool:
    """Whether ``record`` precedes a checkpoint at ``step`` in the unfinished ``epoch``."""
    evaluated = epoch is not None and any(k.startswith("eval/") for k in record) and record.get("epoch", 0) >= epoch
    return record.get("step", 0) <= step and not evaluated
