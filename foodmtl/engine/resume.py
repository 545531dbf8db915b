"""Where a run starts: fresh, from its own last.pt (``resume=auto``), or from another run's checkpoint.

A resumed run takes the config saved in its checkpoint, not the YAML it was started from again:
the weights only mean something under that config. ``key=value`` overrides apply on top of it;
those that would change what the checkpoint means (tasks, data, model, weighting, optimiser and
schedule, epochs, seed, ...) are refused, naming the keys, unless ``resume_override=true`` is
given, which records them in the run's ``resume_changes``. Keys in ``HARMLESS`` (where things
are, logging, workers, checkpoint cadence) are accepted silently.

- ``resume=auto``: ``run=NAME``'s last.pt, else the experiment's newest; training continues in
  that folder, locked against a second start (run_dir.py). With no such run it starts fresh, and says so.
- ``resume=PATH``: training continues into a new run (``run=NAME`` or a default name) next to
  the source, whose folder is never written; ``resumed_from`` records PATH.
- A best.pt holds weights only and is refused with what it lacks (see checkpoint.py).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from foodmtl.config import Config, changed, deep_merge, from_dict, parse_override, set_dotted, to_dict

from foodmtl.errors import ConfigError
from foodmtl.engine.checkpoint import load_checkpoint, require_resumable
from foodmtl.engine.evaluate import resolve_amp
from foodmtl.engine.run_dir import experiment_dir, lock_previous_run, release_run_dir

log = logging.getLogger(__name__)

# Keys (and sections) an override may change on resume without changing what the checkpoint means.
HARMLESS = ("experiment", "run", "resume", "output_dir", "resume_override", "resumed_from", "resume_changes",
            "tracking", "data.root", "data.num_workers", "data.eval_batch_size", "data.strict", "train.device",
            "train.progress", "train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
            "train.overlays", "train.on_nonfinite", "train.compile", "train.cudnn_benchmark",
            "train.grad_diagnostics_every", "train.grad_diagnostics_shared")


@dataclass
class StartPlan:
    """Made on rank 0, followed by every rank."""

    cfg: Config
    checkpoint: str | None = None   # full checkpoint to restore; None: a fresh start
    run_dir: str | None = None      # existing folder to continue in (resume=auto); None: claim a new one

    @property
    def in_place(self) -> bool:
        return self.run_dir is not None


def plan_start(cfg: Config, overrides: Sequence[str], device: torch.device) -> StartPlan:
    """``cfg``: the YAML with ``overrides`` applied; ``overrides``: the ``key=value`` items as given."""
    if cfg.resume is None:
        return StartPlan(fresh(cfg))
    if cfg.resume == "auto":
        found = lock_previous_run(cfg)  # held for the process's life (run_dir.py); released if refused here
        if found is None:
            log.info("no previous run of %s: starting fresh", experiment_dir(cfg) / (cfg.run or ""))
            return StartPlan(fresh(cfg))
        try:
            return StartPlan(resumed(cfg, found, overrides, device), str(found), str(found.parent.parent))
        except Exception:
            release_run_dir(found.parent.parent)
            raise
    source = Path(cfg.resume)
    new = resumed(cfg, source, overrides, device)
    new = dataclasses.replace(new, run=explicit(overrides).get("run"), resumed_from=str(source.resolve()))
    if new.run and (experiment_dir(new) / new.run).resolve() == source.resolve().parent.parent:
        raise ConfigError(f"run={new.run} is the run of {source}; resume=PATH continues into a new run and never "
                          f"writes the source: pick another run=NAME, or continue it in place with "
                          f"resume=auto run={new.run}")
    return StartPlan(new, str(source))


def fresh(cfg: Config) -> Config:
    return dataclasses.replace(cfg, resume_override=False, resumed_from=None, resume_changes=[])


def resumed(cfg: Config, path: Path, overrides: Sequence[str], device: torch.device) -> Config:
    """The checkpoint's config with the overrides applied, meaning-changing ones refused or recorded."""
    snapshot = load_checkpoint(path)
    require_resumable(snapshot, path)
    saved = from_dict(snapshot["config"])
    new = from_dict(deep_merge(snapshot["config"], explicit(overrides)))
    new = dataclasses.replace(new, train=dataclasses.replace(new.train, amp=resolve_amp(new.train.amp, device)))
    changes = {k: v for k, v in changed(to_dict(saved), to_dict(new)).items() if not harmless(k)}
    if changes and not cfg.resume_override:
        listed = ", ".join(f"{k} ({old!r} -> {value!r})" for k, (old, value) in changes.items())
        raise ConfigError(f"resuming {path} takes its saved config; these overrides would change what the "
                          f"checkpoint means: {listed}. Drop them, or pass resume_override=true to apply them "
                          "anyway (recorded in the run's config as resume_changes)")
    step = snapshot["train_state"]["step"]
    record = [f"{k}: {old!r} -> {value!r} (at step {step})" for k, (old, value) in changes.items()]
    if record:
        log.warning("resume_override: %s", "; ".join(record))
    return dataclasses.replace(new, resume=cfg.resume, resume_override=False,
                               resume_changes=[*saved.resume_changes, *record])


def explicit(overrides: Sequence[str]) -> dict[str, Any]:
    """The ``key=value`` items as a nested dict."""
    values: dict[str, Any] = {}
    for item in overrides:
        set_dotted(values, *parse_override(item))
    return values


def harmless(key: str) -> bool:
    return any(key == h or key.startswith(h + ".") for h in HARMLESS)
