"""Run folders ``<output_dir>/<experiment>/<run>/``: claimed atomically, found again by ``resume=auto``.

A folder is claimed by ``os.mkdir`` of the folder itself, which fails when it exists, so of two
processes that want one name exactly one gets it (checking for a file and then creating the
folder would let both through). A default name that is taken gets ``-2``, ``-3``, ... appended.
The trainer claims as late as it can, after data, model and checkpoint have been checked, so a
start that fails leaves no folder behind.
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path

from foodmtl.config import Config


def experiment_dir(cfg: Config) -> Path:
    return Path(cfg.output_dir) / cfg.experiment


def default_name(cfg: Config) -> str:
    return f"{cfg.weighting.name}-s{cfg.train.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def claim_run_dir(cfg: Config) -> Path:
    """A new, empty run folder that no other process holds: ``run=NAME``, else a default name."""
    parent = experiment_dir(cfg)
    parent.mkdir(parents=True, exist_ok=True)
    if cfg.run:
        if not _claim(parent / cfg.run):
            raise FileExistsError(f"run folder {parent / cfg.run} already exists; pick another run=NAME, "
                                  f"or continue it with resume=auto run={cfg.run}")
        return parent / cfg.run
    base = default_name(cfg)
    for i in itertools.count(1):
        path = parent / (base if i == 1 else f"{base}-{i}")
        if _claim(path):
            return path
    raise AssertionError("unreachable")


def _claim(path: Path) -> bool:
    try:
        path.mkdir()
    except FileExistsError:
        return False
    return True


def previous_checkpoint(cfg: Config) -> Path | None:
    """``resume=auto``: last.pt of ``run=NAME``, else of the experiment's newest run; None when
    there is no such run (a requeued job that never checkpointed starts fresh)."""
    if cfg.run:
        folder = experiment_dir(cfg) / cfg.run
        last = folder / "checkpoints" / "last.pt"
        if folder.exists() and not last.is_file():
            raise FileExistsError(f"run folder {folder} exists but holds no checkpoints/last.pt to resume from "
                                  "(it stopped before its first checkpoint); remove it or pick another run=NAME")
        return last if last.is_file() else None
    found = sorted(experiment_dir(cfg).glob("*/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None
