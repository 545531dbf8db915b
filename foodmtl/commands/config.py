"""``foodmtl config CONFIG [key=value ...]``: the resolved config as YAML, checked, without training."""
from __future__ import annotations

import argparse

from foodmtl.commands import add_command


def register(sub) -> None:
    p = add_command(sub, "config", "print the resolved config (defaults <- YAML <- overrides) after checking it",
                    "foodmtl config experiments/synthfood/demo.yaml weighting.name=UW model.backbone=tu-resnet50")
    p.add_argument("config", help="experiment YAML, e.g. experiments/synthfood/demo.yaml")
    p.add_argument("overrides", nargs="*", default=[], help="key=value, e.g. train.epochs=3 weighting.name=uncertainty")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from foodmtl.config import load_config, to_dict

    print(yaml.safe_dump(to_dict(load_config(args.config, args.overrides)), sort_keys=False), end="")
    return 0
