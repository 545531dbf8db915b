"""Run folders ``<output_dir>/<experiment>/<run>/``: claimed atomically, found again by ``resume=auto``.

A folder is claimed by ``os.mkdir`` of the folder itself, which fails when it exists, so of two
processes that want one name exactly one gets it (checking for a file and then creating the
folder would let both through). A default name that is taken gets ``-2``, ``-3``, ... appended.
The trainer claims as late as it can, after data, model and checkpoint have been checked, so a
start that fails leaves no folder behind.

While a run trains, rank 0 holds an exclusive ``flock(2)`` on ``<run>/.lock`` (taken when it
claims the folder, or when ``resume=auto`` picks it), kept until the process ends: a second
``resume=auto`` of the same run (a requeue racing a job still running) fails at once with one
``error:`` line and writes nothing. The kernel drops the lock when its holder dies, kill -9
included, so no stale lock survives a crash; on NFS Linux maps flock onto fcntl byte-range
locks (flock(2), NOTES). DataLoader workers forked from the holder close their copy.
"""
from __future__ import annotations

import fcntl
import itertools
import os
import time
from pathlib import Path

from foodmtl.config import Config
from foodmtl.errors import ConfigError

LOCK_FILE = ".lock"
_held: dict[str, int] = {}  # run folder -> the descriptor that holds its lock in this process


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
    lock_run_dir(path)
    return True


def lock_run_dir(folder: Path) -> None:
    """Hold ``folder``'s lock for the rest of this process (again in the same process: a no-op);
    ConfigError when another process holds it."""
    key = str(folder.resolve())
    if key in _held:
        return
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"run folder {folder} is in use by another process (it holds {folder / LOCK_FILE}); "
                          "wait for that run to end, or pick another run=NAME") from None
    _held[key] = fd


def release_run_dir(folder: Path) -> None:
    fd = _held.pop(str(folder.resolve()), None)
    if fd is not None:
        os.close(fd)


def _forget_inherited_locks() -> None:
    """In a forked child: close the inherited descriptors (the parent's lock stays held)."""
    for fd in _held.values():
        os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_forget_inherited_locks)


def lock_previous_run(cfg: Config) -> Path | None:
    """``previous_checkpoint``, its run folder locked by this process first (see the module doc)."""
    named = experiment_dir(cfg) / cfg.run if cfg.run else None
    if named is not None and named.is_dir():
        lock_run_dir(named)  # before looking inside: a run still short of its first checkpoint is busy, not empty
    try:
        found = previous_checkpoint(cfg)
    except FileExistsError:  # raised only for the named folder locked above
        release_run_dir(named)
        raise
    if found is not None:
        lock_run_dir(found.parent.parent)
    return found


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
