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
        print(f"\nrun folder: {run_dir}\n{final_report(run_dir, final)}")
    return 0


def final_report(run_dir: Path, final: dict[str, float]) -> str:
    """The last evaluation on the eval split and, where the run has one, best.pt on the test split,
    as the run folder's config.yaml and summary.json hold them."""
    import json

    import yaml

    from foodmtl.commands.report import metrics_table

    data = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("data") or {}
    summary = json.loads((run_dir / "summary.json").read_text())
    text = f"eval split ({data.get('eval_split')}), last evaluation:\n{metrics_table(final)}"
    if summary.get("test"):
        tested = summary["tested"]
        test = {k: summary["test"][k] for k in final if k in summary["test"]}  # the eval table's order
        text += f"\n\ntest split ({tested['split']}), best.pt of step {tested['step']}:\n{metrics_table(test)}"
    return text + "\n\n" + units_line(summary.get("units") or {})


def units_line(units: dict[str, str]) -> str:
    """What the tables' numbers are in: summary.json's ``units`` per regression task."""
    regression = ", ".join(f"{task} {unit}" for task, unit in units.items())
    return ("units: accuracies, F1, mAP, IoU, Dice as fractions of 1; loss: each task's training loss"
            + (f"; mae in its task's unit ({regression}), mae_pct in %" if regression else ""))


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
