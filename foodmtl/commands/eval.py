"""``foodmtl eval CHECKPOINT``: every eval sample counted once, across all ranks."""
from __future__ import annotations

import argparse
import json
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from foodmtl.commands.report import metrics_table
    from foodmtl.engine.distributed import cleanup, init_distributed
    from foodmtl.engine.evaluate import eval_loader, evaluate
    from foodmtl.engine.inference import load_with_data

    if args.plots and args.plots.exists() and not args.plots.is_dir():  # fail before the evaluation, not after
        raise FileExistsError(f"--plots {args.plots} is a file; name a folder for the confusion plots")
    info = init_distributed("cpu" if args.cpu else "auto")
    model, cfg, data = load_with_data(args.checkpoint, args.overrides, info.device)
    loader = eval_loader(data.eval, cfg.data.eval_batch_size, cfg.data.num_workers, info)
    metrics, skipped = evaluate(model, loader, info, cfg.train.amp)
    plots = []
    if args.plots:  # a second pass over the eval split
        from foodmtl.viz.confusion import confusion_plots
        plots = confusion_plots(model, loader, info, args.plots, cfg.train.amp)
    cleanup()
    if info.is_main:
        print(metrics_table(metrics))
        if skipped:
            print(f"skipped {skipped} unreadable image(s)")
        for path in plots:
            print(f"wrote {path}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(metrics, f, indent=2, sort_keys=True)
    return 0
