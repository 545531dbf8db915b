"""``foodmtl <command>``: the command-line entry point (commands live in foodmtl.commands)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def parser() -> argparse.ArgumentParser:
    from foodmtl.commands import command_modules

    p = argparse.ArgumentParser(prog="foodmtl", description="Multi-task food recognition.")
    sub = p.add_subparsers(dest="command", required=True)
    for module in command_modules():
        module.register(sub)
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
