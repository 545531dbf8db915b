"""Run folders ``<output_dir>/<experiment>/<run>/`` and finding the one to resume."""
from __future__ import annotations

import time
from pathlib import Path

from foodmtl.config import Config


def experiment_dir(cfg: Config) -> Path:
    return Path(cfg.output_dir) / cfg.experiment


def new_run_dir(cfg: Config) -> Path:
    name = cfg.run or f"{cfg.weighting.name}-s{cfg.train.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = experiment_dir(cfg) / name
    if (run_dir / "metrics.jsonl").exists():
        raise FileExistsError(f"run folder {run_dir} already holds a run; pick another run=NAME or resume=auto")
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    return run_dir


def resume_checkpoint(cfg: Config) -> Path | None:
    """``resume=auto``: last.pt of the named run, else of the newest run of the experiment
    (None when there is none: a requeued job starts fresh). Otherwise a checkpoint path."""
    if cfg.resume is None:
        return None
    if cfg.resume != "auto":
        path = Path(cfg.resume)
        if not path.is_file():
            raise FileNotFoundError(f"resume checkpoint not found: {path}")
        return path
    pattern = f"{cfg.run}/checkpoints/last.pt" if cfg.run else "*/checkpoints/last.pt"
    found = sorted(experiment_dir(cfg).glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None
