"""``foodmtl train CONFIG [key=value ...]``."""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(sub) -> None:
    from foodmtl.commands.config import add_config_command

    add_config_command(sub, "train", "train from a YAML experiment, with key=value overrides",
                       "foodmtl train experiments/synthfood/demo.yaml train.epochs=3 weighting.name=uncertainty", run)


def run(args: argparse.Namespace) -> int:
    from foodmtl.engine.preemption import stopping_before_training

    with stopping_before_training():  # until training starts, a signal ends the process with one line
        run_dir, final = checked_train(args)
    if int(os.environ.get("RANK", "0")) == 0:
        from foodmtl.commands.report import metrics_table

        print(f"\nrun folder: {run_dir}\n{metrics_table(final)}")
    return 0


def checked_train(args: argparse.Namespace) -> tuple[Path, dict[str, float]]:
    from foodmtl.config import load_config
    from foodmtl.models.pretrained import local_weights

    cfg = load_config(args.config, args.overrides)  # every check that needs no torch: a typo is reported in < 2 s
    if cfg.model.pretrained_file:
        local_weights(cfg.model.pretrained_file)
    if cfg.model.init_from and not cfg.resume and not os.path.isfile(cfg.model.init_from):  # a resume never reads it
        raise FileNotFoundError(f"model.init_from={cfg.model.init_from}: no such checkpoint")

    from foodmtl.engine.trainer import train

    return train(cfg, args.overrides)
