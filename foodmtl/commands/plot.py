"""``foodmtl plot RUNS_DIR|wandb:ENTITY/PROJECT --out DIR``: task-weight, validation and gradient-diagnostics
curves (PNG); with ``--pareto X Y`` the linear-scalarization front against the methods instead."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    from foodmtl.commands import add_command

    p = add_command(sub, "plot", "task-weight trajectories and validation curves of a group of runs (PNG)",
                    "foodmtl plot runs/synthfood-ablation --out figures/")
    p.add_argument("source", help="folder of run folders (e.g. runs/synthfood-ablation) or wandb:ENTITY/PROJECT")
    p.add_argument("--group", help="only runs of this group (tracking.group, else the experiment)")
    p.add_argument("--out", default=".", help="folder for <group>-weights.png, <group>-validation.png and, for "
                   "runs with train.grad_diagnostics_every, <group>-diagnostics.png (--pareto: <group>-pareto.png)")
    p.add_argument("--smooth", type=int, default=20,
                   help="rolling mean of the task weights and gradient cosines over N logged steps")
    p.add_argument("--pareto", nargs=2, metavar=("METRIC_X", "METRIC_Y"),
                   help="instead: <group>-pareto.png, the front of the scalarization-* runs on these two metrics "
                        "(e.g. dish/top1 ingredients/mAP) and each method's mean with its 95%% intervals")
    p.add_argument("--split", choices=["test", "eval"],
                   help="--pareto: the figures of foodmtl table --split (default: test where every run has it)")
    p.add_argument("--wandb", choices=["auto", "online", "offline"],
                   help="also log the figures as images to a new W&B run (job_type=plots) in the group")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from foodmtl.errors import ConfigError
    from foodmtl.analysis.wandb_api import load_group

    if args.smooth < 1:
        raise ConfigError(f"--smooth {args.smooth}: the rolling mean needs at least 1 step")
    runs = load_group(args.source, args.group)  # before matplotlib is imported: a wandb: source fails in ~1 s

    group = runs[0].group
    out = Path(args.out)
    if args.pareto:
        figures = pareto(runs, args.pareto, args.split, out / f"{group}-pareto.png")
    else:
        figures = curves(runs, out, group, args.smooth)
    for path in figures.values():
        print(path)
    if args.wandb:
        log_to_wandb(figures, runs[0].config.get("tracking") or {}, group, args.wandb, out)
    return 0


def curves(runs: list, out: Path, group: str, smooth: int) -> dict[str, Path]:
    from foodmtl.analysis.tables import is_single
    from foodmtl.analysis.curves import plot_validation, plot_weights
    from foodmtl.analysis.diagnostics import has_diagnostics, plot_diagnostics

    figures = {"validation": plot_validation(runs, out / f"{group}-validation.png")}
    if any(not is_single(r.method) for r in runs):
        figures["weights"] = plot_weights(runs, out / f"{group}-weights.png", smooth)
    if has_diagnostics(runs):
        figures["diagnostics"] = plot_diagnostics(runs, out / f"{group}-diagnostics.png", smooth)
    return figures


def pareto(runs: list, metrics: list[str], split: str | None, path: Path) -> dict[str, Path]:
    """The runs that may share a table (``check_comparable``), on the split a table would report."""
    from foodmtl.analysis.comparable import check_comparable
    from foodmtl.analysis.pareto import pareto_view
    from foodmtl.analysis.pareto_figure import NO_POINTS, plot_pareto
    from foodmtl.analysis.tables import reported_split

    check_comparable(runs)
    view = pareto_view(runs, *metrics, reported_split(runs, split))
    if not view.points:
        print(f"note: {NO_POINTS}", file=sys.stderr)
    return {"pareto": plot_pareto(view, path)}


def log_to_wandb(figures: dict[str, Path], tracking: dict, group: str, mode: str, out: Path) -> None:
    """Images under ``plots/<name>`` of a new W&B run in the runs' project and group."""
    import wandb

    from foodmtl.tracking.wandb_run import WandbWriter

    writer = WandbWriter(mode, out, f"{group}-plots", {}, tracking.get("project", "foodmtl"),
                         tracking.get("entity"), group, job_type="plots")
    writer.log({"step": 0, **{f"plots/{name}": wandb.Image(str(path)) for name, path in figures.items()}})
    writer.finish()
