"""``foodmtl train CONFIG [key=value ...]``."""
from __future__ import annotations

import argparse
import os


def register(sub) -> None:
    from foodmtl.commands.config import add_config_command

    add_config_command(sub, "train", "train from a YAML experiment, with key=value overrides",
                       "foodmtl train experiments/synthfood/demo.yaml train.epochs=3 weighting.name=uncertainty", run)


def run(args: argparse.Namespace) -> int:
    from foodmtl.config import load_config
    from foodmtl.models.pretrained import local_weights

    cfg = load_config(args.config, args.overrides)  # every check that needs no torch: a typo is reported in < 2 s
    if cfg.model.pretrained_file:
        local_weights(cfg.model.pretrained_file)
    if cfg.model.init_from and not cfg.resume and not os.path.isfile(cfg.model.init_from):  # a resume never reads it
        raise FileNotFoundError(f"model.init_from={cfg.model.init_from}: no such checkpoint")

    from foodmtl.commands.report import metrics_table
    from foodmtl.engine.trainer import train

    run_dir, final = train(cfg, args.overrides)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"\nrun folder: {run_dir}\n{metrics_table(final)}")
    return 0
