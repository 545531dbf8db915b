"""Work after the last evaluation, on rank 0: callables each given the ``FinishedRun``, listed in
the trainer's ``AFTER_TRAINING`` (overlays, engine/overlays.py; the checkpoint artifacts, here).
Adding one (a report, an export) is one function and one entry there."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from foodmtl.config import Config
from foodmtl.data.dataset import FoodDataset
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tracking import Tracker


@dataclass
class FinishedRun:
    cfg: Config
    model: MultiTaskModel     # the reported model: the EMA's when it is on
    eval_set: FoodDataset
    run_dir: Path
    tracker: Tracker
    step: int
    device: torch.device


def log_checkpoints(run: FinishedRun) -> None:
    """best.pt and last.pt as versions of the W&B model artifact (``tracking.log_checkpoints``)."""
    folder = run.run_dir / "checkpoints"
    if run.cfg.tracking.log_checkpoints:
        for name, alias in (("best.pt", "best"), ("last.pt", "last")):  # last.pt last: W&B's "latest"
            if (folder / name).is_file():
                run.tracker.log_checkpoint(folder / name, [alias])

