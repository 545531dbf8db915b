"""``foodmtl train|eval``: the command-line entry point."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def metrics_table(metrics: dict[str, float]) -> str:
    """Rows = tasks, columns = metrics, as a fixed-width text table."""
    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        task, _, name = key.partition("/")
        rows.setdefault(task, {})[name] = value
    columns = sorted({name for row in rows.values() for name in row})
    lines = [f"{'task':<14}" + "".join(f"{c:>10}" for c in columns)]
    for task, row in rows.items():
        cells = "".join(f"{row[c]:>10.4f}" if c in row else f"{'':>10}" for c in columns)
        lines.append(f"{task:<14}{cells}")
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> int:
    from foodmtl.config import load_config
    from foodmtl.engine.trainer import train

    cfg = load_config(args.config, args.overrides)
    run_dir, final = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"\nrun folder: {run_dir}\n{metrics_table(final)}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from foodmtl.config import parse_override, set_dotted
    from foodmtl.data.builder import build_data
    from foodmtl.engine.distributed import cleanup, init_distributed
    from foodmtl.engine.evaluate import eval_loader, evaluate
    from foodmtl.engine.inference import load_trained

    overrides: dict = {}
    for item in args.overrides:
        set_dotted(overrides, *parse_override(item))
    info = init_distributed("cpu" if args.cpu else "auto")
    model, cfg, tasks = load_trained(args.checkpoint, overrides, info.device)
    data = build_data(cfg.data, [t.name for t in tasks], cfg.train.seed)
    if [t.classes for t in data.tasks] != [t.classes for t in tasks]:
        raise SystemExit("the data's class lists differ from the checkpoint's; evaluate on the data it was trained on")
    loader = eval_loader(data.eval, cfg.data.eval_batch_size, cfg.data.num_workers, info)
    metrics, skipped = evaluate(model, loader, info, cfg.train.amp)
    cleanup()
    if info.is_main:
        print(metrics_table(metrics))
        if skipped:
            print(f"skipped {skipped} unreadable image(s)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(metrics, f, indent=2, sort_keys=True)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="foodmtl", description="Multi-task food recognition.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train from a YAML experiment, with key=value overrides")
    t.add_argument("config", help="experiment YAML, e.g. experiments/synthfood/demo.yaml")
    t.add_argument("overrides", nargs="*", help="key=value, e.g. train.epochs=3 weighting.name=uncertainty")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="evaluate a checkpoint on its config's eval split")
    e.add_argument("checkpoint")
    e.add_argument("overrides", nargs="*", help="key=value, e.g. data.root=/data/food-101")
    e.add_argument("--json", help="also write the metrics to this JSON file")
    e.add_argument("--cpu", action="store_true", help="evaluate on the CPU even if a GPU is present")
    e.set_defaults(func=cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    from foodmtl.config import ConfigError
    from foodmtl.data.dataset import CorruptImageError
    from foodmtl.engine.checkpoint import CheckpointError
    from foodmtl.registry import UnknownNameError

    try:
        return args.func(args)
    except (FileNotFoundError, FileExistsError, ConfigError, UnknownNameError, CheckpointError,
            CorruptImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
