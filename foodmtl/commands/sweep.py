"""``foodmtl sweep SWEEP.yaml``: run an ablation grid locally, or emit it for torchrun, SLURM or W&B; a sweep
with a ``tune:`` section runs in two stages, tune then test (foodmtl/analysis/tuning.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    from foodmtl.commands import add_command

    p = add_command(sub, "sweep", "run an ablation grid (methods x seeds + single-task baselines)",
                    "foodmtl sweep experiments/ablations/synthfood.yaml --emit slurm --out sweep.sbatch")
    p.add_argument("spec", help="sweep YAML, e.g. experiments/ablations/synthfood.yaml")
    p.add_argument("--stage", choices=["tune", "test", "all"],
                   help="a sweep with a tune: section: tune (the trials, on validation), test (choose each method's "
                        "configuration from the finished trials, write tuning.json, train it on the sweep's seeds) "
                        "or all (default: tune, then test)")
    p.add_argument("--emit", choices=["torchrun", "slurm", "wandb"],
                   help="write the grid as torchrun commands, a SLURM array script or a W&B sweep file "
                        "instead of running it here")
    p.add_argument("--out", help="file for --emit (default: stdout)")
    p.add_argument("--run", action="append", metavar="NAME", help="only this run, e.g. uncertainty-s0 (repeatable)")
    p.add_argument("--nproc", type=int, default=1, help="processes (GPUs) per run for --emit torchrun|slurm")
    p.add_argument("--throttle", type=int, default=0, metavar="N",
                   help="--emit slurm: at most N array tasks at once (--array=0-K%%N); 0: no limit")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs trained at once here, CPU threads split between them (OMP_NUM_THREADS)")
    p.add_argument("--process-per-run", action="store_true",
                   help="train each run in its own process, not several one after another in each of --jobs "
                        "warm workers (which pay the imports once)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from foodmtl.analysis import sweep, tuning
    from foodmtl.errors import ConfigError

    spec = sweep.load_spec(args.spec)
    stage = args.stage or ("all" if spec.tune else None)
    if stage == "all":
        if args.emit or args.run:
            raise ConfigError("--emit and --run take one stage at a time: --stage tune, then (once the trials "
                              "finished) --stage test")
        return train(tuning.stage_runs(spec, "tune"), args) or train(tuning.stage_runs(spec, "test"), args)
    runs = sweep.select(tuning.stage_runs(spec, stage) if stage else sweep.expand(spec), args.run)
    if args.emit is None:
        return train(runs, args)
    sweep.require_current(runs)  # the emitted scripts skip a finished run by its summary.json alone
    if args.emit == "torchrun":
        text = sweep.torchrun_commands(runs, args.nproc)
    elif args.emit == "slurm":
        text = sweep.slurm_script(spec, runs, args.nproc, args.throttle)
    else:
        group = tuning.tune_group(spec) if stage == "tune" else spec.group
        text = sweep.wandb_sweep(spec, runs, stage=stage, name=group)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return 0


def train(runs: list, args: argparse.Namespace) -> int:
    """Train ``runs`` here; 1 (after listing them) when some failed."""
    from foodmtl.analysis import sweep

    failed = sweep.run_local(runs, args.jobs, args.process_per_run)
    if failed:
        print(f"{len(failed)} of {len(runs)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
