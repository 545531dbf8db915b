"""Ablation sweeps: a YAML grid of methods x seeds (+ single-task baselines) -> named runs.

A sweep file (``experiments/ablations/*.yaml``)::

    base: ../synthfood/ablation.yaml       # experiment YAML, relative to this file
    group: synthfood-ablation              # W&B group, and the runs' folder runs/<group>/
    seeds: [0, 1, 2]
    overrides: [train.epochs=4]            # every run (optional)
    methods:                               # run "<method>-s<seed>": these key=value overrides
      uniform: [weighting.name=uniform]
      manual: [weighting.name=manual, weighting.options.weights.ingredients=4]
    single_task: [dish, ingredients]       # run "single-<task>-s<seed>": tasks=[<task>], uniform
    scalarization: {simplex: {steps: 4}}   # manual-weight methods over a weight grid (analysis/scalarization.py)

Each run is a ``foodmtl train`` argument list, so the same grid runs locally in sequence,
or is emitted as torchrun commands, a SLURM array script or a W&B sweep file. A ``tune:`` section
turns the grid into two stages, tune then test (``foodmtl.analysis.tuning``).
"""
from __future__ import annotations

import logging
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from foodmtl.config import changed, load_config, read_yaml, to_dict
from foodmtl.config.schema import LAST_EVALUATION

from foodmtl.errors import ConfigError
from foodmtl.errors import PREEMPTED as EXIT_PREEMPTED
from foodmtl.errors import Preempted
from foodmtl.utils.registry import unknown_name_error
from foodmtl.tasks import TASK_KINDS, get_kind
from foodmtl.analysis.pools import ProcessPool, WarmPool
from foodmtl.analysis.scalarization import Scalarization, read_scalarization, with_points

log = logging.getLogger(__name__)

SLURM_TRAIN = "experiments/slurm/train.sbatch"
ENTRY = "foodmtl/__main__.py"  # what ``python -m foodmtl`` runs, relative to the repository root


@dataclass
class SweepSpec:
    path: Path                  # the sweep file
    base: Path                  # experiment YAML every run starts from
    group: str
    seeds: list[int]
    methods: dict[str, list[str]] = field(default_factory=dict)
    single_task: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    scalarization: Scalarization | None = None
    tune: dict[str, Any] = field(default_factory=dict)  # the tuning stage, read by foodmtl.analysis.tuning


@dataclass
class SweepRun:
    name: str                   # run folder and W&B run name, e.g. "uncertainty-s0"
    args: list[str]             # `foodmtl train` arguments: base YAML, then key=value overrides
    folder: Path                # where the run writes config.yaml, metrics.jsonl, summary.json
    config: dict[str, Any] = field(default_factory=dict)  # the config these arguments load


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file not found: {path}")
    raw = read_yaml(path)
    unknown = set(raw) - {"base", "group", "seeds", "methods", "single_task", "overrides", "scalarization", "tune"}
    if unknown:
        raise ConfigError(f"{path}: unknown sweep keys {sorted(unknown)}")
    missing = [k for k in ("base", "group", "seeds") if k not in raw]
    if missing or not (raw.get("methods") or raw.get("single_task") or raw.get("scalarization")):
        raise ConfigError(f"{path}: a sweep needs base, group, seeds and methods, single_task or scalarization")
    methods = {str(name): list(overrides or []) for name, overrides in (raw.get("methods") or {}).items()}
    return SweepSpec(path=path, base=Path(os.path.normpath(path.parent / raw["base"])), group=str(raw["group"]),
                     seeds=[int(s) for s in raw["seeds"]], methods=methods,
                     single_task=list(raw.get("single_task") or []), overrides=list(raw.get("overrides") or []),
                     scalarization=read_scalarization(raw.get("scalarization"), str(path)),
                     tune=dict(raw.get("tune") or {}))


def expand(spec: SweepSpec) -> list[SweepRun]:
    """Every grid point (methods, scalarization points, baselines); each config is loaded (so
    validated) here, before any run."""
    points = [(f"{m}-s{seed}", seed, extra) for m, extra in methods_of(spec).items() for seed in spec.seeds]
    baselines = {t: single_task_overrides(t, spec) for t in spec.single_task}
    points += [(f"single-{t}-s{seed}", seed, baselines[t]) for t in spec.single_task for seed in spec.seeds]
    return [sweep_run(spec, spec.group, name, seed, extra) for name, seed, extra in points]


def sweep_run(spec: SweepSpec, group: str, name: str, seed: int, extra: list[str]) -> SweepRun:
    """Run ``name`` of W&B group and folder ``group``: the spec's overrides, then ``extra``; its config
    is loaded (so validated) here."""
    overrides = [f"experiment={group}", f"tracking.group={group}", f"run={name}", f"train.seed={seed}",
                 *spec.overrides, *extra]
    cfg = load_config(spec.base, overrides)
    return SweepRun(name, [str(spec.base), *overrides], Path(cfg.output_dir) / cfg.experiment / name, to_dict(cfg))


def methods_of(spec: SweepSpec) -> dict[str, list[str]]:
    """The multi-task methods with their overrides: the listed ones, then the scalarization points."""
    if not spec.scalarization:
        return spec.methods
    return with_points(spec.methods, spec.scalarization, load_config(spec.base, spec.overrides).tasks)


def single_task_overrides(task: str, spec: SweepSpec) -> list[str]:
    """A baseline trains ``task`` alone; its best.pt is chosen by the task's primary metric, unless the
    base keeps the final model (``train.best_metric=last``), as its methods do."""
    if task not in TASK_KINDS:
        raise unknown_name_error("single_task task", task, TASK_KINDS)
    primary = get_kind(TASK_KINDS[task]).primary_metric
    chosen = load_config(spec.base, spec.overrides).train.best_metric
    return [f"tasks=[{task}]", "weighting.name=uniform",
            f"train.best_metric={LAST_EVALUATION if chosen == LAST_EVALUATION else f'{task}/{primary}'}"]


def select(runs: list[SweepRun], names: list[str] | None) -> list[SweepRun]:
    """The runs called ``names`` (all when None), in grid order."""
    known = {r.name for r in runs}
    for name in names or []:
        if name not in known:
            raise unknown_name_error("sweep run", name, known)
    return [r for r in runs if names is None or r.name in names]


def run_local(runs: list[SweepRun], jobs: int = 1, process_per_run: bool = False) -> list[str]:
    """Train the runs, ``jobs`` at a time; returns the names of those that failed.

    Each run is a ``foodmtl train`` command line, exactly what the emitted scripts run. By default
    ``jobs`` warm workers train them, several runs one after another in one process (``WarmPool``:
    the imports are paid once per worker); ``process_per_run`` gives each run its own process.
    Either way a run that fails, or a worker killed in a run, cannot touch the next run. With
    ``jobs`` > 1 the CPU threads are split between the runs (``OMP_NUM_THREADS``, unless set): small
    runs use two cores poorly, two of them at a time use both. Runs with a summary.json are skipped;
    ``resume=auto`` continues a run that stopped part-way from its last.pt.
    """
    require_current(runs)
    todo = []
    for i, run in enumerate(runs, 1):
        if (run.folder / "summary.json").exists():
            log.info("[%d/%d] %s: finished before, skipped", i, len(runs), run.name)
        else:
            todo.append((i, run))
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    pool = (ProcessPool if process_per_run else WarmPool)(jobs, env)
    failed = []
    try:
        with pool.forwarding_signals():
            for (i, run), code, seconds in pool.run(((i, run), ["train", *run.args, "resume=auto"]) for i, run in todo):
                log.info("[%d/%d] %s: %s in %.0f s", i, len(runs), run.name,
                         "ok" if code == 0 else f"FAILED (exit {code})", seconds)
                if code != 0 and code != EXIT_PREEMPTED:
                    failed.append(run.name)
    finally:
        pool.close()
    if pool.preempted:
        log.warning("sweep preempted (running runs checkpointed); run the same command to go on")
        raise Preempted()
    return failed


# Keys a finished run may hold differently from the grid point that asks for it: where it ran, how
# it was logged and resumed, and train.amp=auto as resolved on its device.
BOOKKEEPING = ("launch_dir", "output_dir", "resume", "resume_override", "resumed_from", "resume_changes", "tracking")


def require_current(runs: list[SweepRun]) -> None:
    """A finished run is skipped only if it was trained as its grid point asks now (a tuning stage
    that chose again, a changed base or override would otherwise reuse stale figures): ConfigError
    naming the first stale run and its differing keys."""
    for run in runs:
        if not (run.folder / "summary.json").exists():
            continue
        if not (run.folder / "config.yaml").is_file():
            raise ConfigError(f"{run.folder} has a summary.json but no config.yaml, so what it trained is unknown; "
                              "move it away to train it again")
        stale = {k: v for k, v in changed(read_yaml(run.folder / "config.yaml"), run.config).items()
                 if k.split(".")[0] not in BOOKKEEPING and not (k == "train.amp" and v[1] == "auto")}
        if stale:
            listed = ", ".join(f"{k} ({old!r} there, {new!r} now)" for k, (old, new) in stale.items())
            raise ConfigError(f"{run.folder} finished with another configuration than this sweep asks for: "
                              f"{listed}; move it away (or use another group) to train it again")


def torchrun_commands(runs: list[SweepRun], nproc: int = 1) -> str:
    """One ``torchrun`` line per run."""
    head = ["torchrun", f"--nproc_per_node={nproc}", "-m", "foodmtl", "train"]
    return "".join(shlex.join(head + run.args) + "\n" for run in runs)


def slurm_script(spec: SweepSpec, runs: list[SweepRun], gpus: int = 1, throttle: int = 0) -> str:
    """A SLURM array job, one task per run, each through experiments/slurm/train.sbatch
    (torchrun on one node, preemption checkpoint and requeue, resume=auto). ``throttle`` > 0: at
    most that many array tasks run at once (``--array=0-N%throttle``)."""
    if throttle < 0:
        raise ConfigError(f"--throttle={throttle} must be >= 1 (or 0: no limit)")
    limit = f"%{throttle}" if throttle else ""
    cases = "".join(f"  {i}) train {shlex.quote(str(run.folder))} {shlex.join(run.args)} ;;\n"
                    for i, run in enumerate(runs))
    return f"""#!/bin/bash
# Sweep {spec.path} ({len(runs)} runs, W&B group {spec.group}), written by `foodmtl sweep --emit slurm`.
#   sbatch THIS_FILE      (from the repository root)
#SBATCH --job-name={spec.group}
#SBATCH --array=0-{len(runs) - 1}{limit}
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node={gpus}
#SBATCH --cpus-per-task={8 * gpus}
#SBATCH --time=24:00:00
#SBATCH --signal=B:USR1@120
#SBATCH --requeue
#SBATCH --output=slurm-%A_%a.out

# A run with a summary.json is finished: resuming it again would start no epoch.
train() {{
  if [ -f "$1/summary.json" ]; then echo "$1 is finished; skipping"; exit 0; fi
  shift
  exec bash {SLURM_TRAIN} "$@"
}}

case "$SLURM_ARRAY_TASK_ID" in
{cases}esac
"""


def wandb_sweep(spec: SweepSpec, runs: list[SweepRun], python: str = sys.executable,
                stage: str | None = None, name: str | None = None) -> str:
    """A W&B grid sweep ``name`` (default: the group) over run names that ``wandb sweep`` + ``wandb agent``
    run as written; for each name the agent runs ``PYTHON -m foodmtl sweep SPEC [--stage STAGE] --run=NAME``
    (``${args}``).

    ``wandb agent`` (wandb 0.31, ``wandb_agent.py``) reads ``program`` for every run, so a file
    without it fails, and it fills ``${interpreter}`` with a bare ``python``; the command therefore
    names ``python`` (default: this interpreter, the venv's) itself, and ``program`` names the
    entry point the command runs. tests/test_sweep.py checks the file with the sweep-config schema
    of wandb's ``sweeps`` package and runs the command the agent builds."""
    cfg = load_config(spec.base, spec.overrides)
    sweep = {
        "name": name or spec.group,
        "project": cfg.tracking.project,
        **({"entity": cfg.tracking.entity} if cfg.tracking.entity else {}),
        "program": ENTRY,
        "method": "grid",
        "parameters": {"run": {"values": [run.name for run in runs]}},
        "command": ["${env}", python, "-m", "foodmtl", "sweep", str(spec.path),
                    *(["--stage", stage] if stage else []), "${args}"],
    }
    return f"# wandb sweep THIS_FILE && wandb agent ENTITY/PROJECT/SWEEP_ID (from the repository root)\n" \
           f"{yaml.safe_dump(sweep, sort_keys=False)}"
