"""``foodmtl eval CHECKPOINT``: every eval sample counted once, across all ranks; a progress bar on a
terminal; with ``--wandb`` the metrics also go to a W&B run (job_type=eval) in the training run's
project and group (tracking/job_run.py)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    from foodmtl.commands import add_command

    p = add_command(sub, "eval", "evaluate a checkpoint on its config's eval split",
                    "foodmtl eval runs/synthfood-demo/<run>/checkpoints/best.pt --json metrics.json")
    p.add_argument("checkpoint", help="a checkpoint, e.g. runs/<experiment>/<run>/checkpoints/best.pt")
    p.add_argument("overrides", nargs="*", default=[], help="key=value, e.g. data.root=/data/food-101")
    p.add_argument("--json", help="also write the metrics to this JSON file")
    p.add_argument("--cpu", action="store_true", help="evaluate on the CPU even if a GPU is present")
    p.add_argument("--plots", type=Path, help="write confusion_<task>.png and the most confused pairs, "
                   "confused_pairs_<task>.csv/.png, for each single-label task here")
    p.add_argument("--wandb", choices=["auto", "online", "offline"],
                   help="also log the metrics to a new W&B run (job_type=eval) in the training run's project and "
                        "group; its wandb/ folder goes in the current folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from foodmtl.commands.report import metrics_table
    from foodmtl.engine.distributed import cleanup, init_distributed
    from foodmtl.engine.evaluate import eval_loader, evaluate
    from foodmtl.engine.inference import load_with_data
    from foodmtl.tracking.local import write_json_atomic

    if args.plots and args.plots.exists() and not args.plots.is_dir():  # fail before the evaluation, not after
        raise FileExistsError(f"--plots {args.plots} is a file; name a folder for the confusion plots")
    info = init_distributed("cpu" if args.cpu else "auto")
    model, cfg, data = load_with_data(args.checkpoint, args.overrides, info.device)
    loader = eval_loader(data.eval, cfg.data.eval_batch_size, cfg.data.num_workers, info)
    metrics, skipped = evaluate(model, loader, info, cfg.train.amp, show_progress=True)
    plots = []
    if args.plots:  # a second pass over the eval split
        from foodmtl.analysis.confusion import confusion_plots
        plots = confusion_plots(model, loader, info, args.plots, cfg.train.amp)
    cleanup()
    if info.is_main:
        print(metrics_table(metrics))
        if skipped:
            print(f"skipped {skipped} unreadable image(s)")
        for path in plots:
            print(f"wrote {path}")
        if args.json:
            write_json_atomic(Path(args.json), metrics)
        if args.wandb:
            log_to_wandb(args.wandb, cfg, args.checkpoint, metrics, skipped)
    return 0


def log_to_wandb(mode: str, cfg, checkpoint: str, metrics: dict[str, float], skipped: int) -> None:
    """``eval/<task>/<metric>`` (best/last summary by direction, as training logs them) in a job_type=eval run."""
    from foodmtl.tracking.job_run import job_run

    writer = job_run(mode, cfg, "eval", Path.cwd(), checkpoint)
    writer.log({"step": 0, **{f"eval/{k}": v for k, v in metrics.items()}, "data/skipped_eval": skipped})
    writer.finish()
