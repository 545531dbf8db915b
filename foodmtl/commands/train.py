"""``foodmtl train CONFIG [key=value ...]``."""
from __future__ import annotations

import argparse
import os


def register(sub) -> None:
    p = sub.add_parser("train", help="train from a YAML experiment, with key=value overrides")
    p.add_argument("config", help="experiment YAML, e.g. experiments/synthfood/demo.yaml")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. train.epochs=3 weighting.name=uncertainty")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from foodmtl.commands.report import metrics_table
    from foodmtl.config import load_config
    from foodmtl.engine.trainer import train

    cfg = load_config(args.config, args.overrides)
    run_dir, final = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"\nrun folder: {run_dir}\n{metrics_table(final)}")
    return 0
