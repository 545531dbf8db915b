"""``foodmtl config CONFIG [key=value ...]``: the resolved config as YAML, checked, without training."""
from __future__ import annotations

import argparse
from typing import Callable

from foodmtl.commands import add_command


def add_config_command(sub, name: str, help: str, example: str,
                       run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """A sub-command that takes an experiment YAML and ``key=value`` overrides (``config``, ``train``)."""
    p = add_command(sub, name, help, example)
    p.add_argument("config", help="experiment YAML, e.g. experiments/synthfood/demo.yaml")
    p.add_argument("overrides", nargs="*", default=[], help="key=value, e.g. train.epochs=3 weighting.name=uncertainty")
    p.set_defaults(func=run)
    return p


def register(sub) -> None:
    add_config_command(sub, "config", "print the resolved config (defaults <- YAML <- overrides) after checking it",
                       "foodmtl config experiments/synthfood/demo.yaml weighting.name=UW model.backbone=tu-resnet50",
                       run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from foodmtl.config import load_config, to_dict

    print(yaml.safe_dump(to_dict(load_config(args.config, args.overrides)), sort_keys=False), end="")
    return 0
