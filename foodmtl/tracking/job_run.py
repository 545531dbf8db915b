"""W&B runs of the jobs run on a trained checkpoint (``eval``, ``predict`` with ``--wandb``).

Each is a new run of ``job_type`` eval / predict, named ``<training run>-<job type>``, in the
training run's project, entity and group (``tracking.group``, else the experiment), as the
trainer names them, so W&B shows it beside the runs it scored. Its config is the checkpoint's
config plus the checkpoint path. Mode as ``tracking.wandb`` (auto, online, offline).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from foodmtl.config import Config, to_dict
from foodmtl.tracking.wandb_run import WandbWriter


def job_run(mode: str, cfg: Config, job_type: str, folder: Path, checkpoint: str) -> WandbWriter:
    """``folder``: where its ``wandb/`` run folder goes."""
    t = cfg.tracking
    config: dict[str, Any] = to_dict(cfg) | {"checkpoint": str(Path(checkpoint).resolve())}
    return WandbWriter(mode, folder, f"{cfg.run}-{job_type}", config, t.project, t.entity, t.group or cfg.experiment,
                       t.tags, job_type=job_type)
