"""The rank-0 tracking facade: metrics.jsonl + summary.json + W&B, one call each."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from foodmtl.tracking.local import JsonlWriter, read_jsonl, write_json_atomic, write_jsonl_atomic
from foodmtl.tracking.wandb_run import WandbWriter


class Tracker:
    """``resume_step``: a resumed run first drops records logged after its checkpoint, then gives
    W&B the kept records it lacks, so both hold the same history before training goes on."""

    def __init__(self, run_dir: Path, wandb: WandbWriter | None, resume_step: int | None = None):
        self.run_dir = run_dir
        metrics = run_dir / "metrics.jsonl"
        if resume_step is not None and metrics.exists():
            kept = [r for r in read_jsonl(metrics) if r.get("step", 0) <= resume_step]
            write_jsonl_atomic(metrics, kept)
            if wandb:
                wandb.replay(kept)
        self.jsonl = JsonlWriter(metrics)
        self.wandb = wandb
        self.summary_values: dict[str, Any] = {}

    def log(self, record: dict[str, Any], step: int) -> None:
        record = {"step": step, **record}
        self.jsonl.log(record)
        if self.wandb:
            self.wandb.log(record)

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

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass
