"""The rank-0 tracking facade: metrics.jsonl + summary.json + W&B, one call each."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from foodmtl.tracking.local import JsonlWriter, read_jsonl, write_json_atomic
from foodmtl.tracking.wandb_run import WandbWriter


class Tracker:
    """``resume_step``: a resumed run first drops records logged after its checkpoint."""

    def __init__(self, run_dir: Path, wandb: WandbWriter | None, resume_step: int | None = None):
        self.run_dir = run_dir
        if resume_step is not None:
            truncate_after(run_dir / "metrics.jsonl", resume_step)
        self.jsonl = JsonlWriter(run_dir / "metrics.jsonl")
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

    def finish(self) -> None:
        self.jsonl.close()
        if self.wandb:
            self.wandb.finish()


def truncate_after(path: Path, step: int) -> None:
    if not path.exists():
        return
    kept = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
    path.unlink()
    writer = JsonlWriter(path)
    for record in kept:
        writer.log(record)
    writer.close()


class NullTracker:
    """What every rank but 0 gets: tracking calls that do nothing."""

    wandb = None

    def log(self, record: dict[str, Any], step: int) -> None:
        pass

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass
