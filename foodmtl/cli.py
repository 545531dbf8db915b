"""``foodmtl <command>``: the command-line entry point (commands live in foodmtl.commands).

A user mistake (bad config, missing file, bad data, unknown name) prints one ``error: ...``
line and exits 2, without a traceback; bugs keep their traceback.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

USAGE_ERROR = 2
# Errors raised only by modules that import torch: caught when their module is loaded (an
# error class cannot be raised before its module is imported), so a config error is
# reported without paying the ~3 s torch import just to name them.
HEAVY_USER_ERRORS = {"foodmtl.data.dataset": "CorruptImageError", "foodmtl.engine.checkpoint": "CheckpointError"}


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in the one-line ``error: ...`` form of every other user error."""

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    from foodmtl.commands import command_modules

    p = Parser(prog="foodmtl", description="Multi-task food recognition.")
    sub = p.add_subparsers(dest="command", required=True)
    for module in command_modules():
        module.register(sub)
    return p


def user_errors() -> tuple[type[BaseException], ...]:
    from foodmtl.config import ConfigError
    from foodmtl.data.errors import DataError
    from foodmtl.output import OutputError
    from foodmtl.registry import UnknownNameError

    heavy = tuple(getattr(sys.modules[module], name) for module, name in HEAVY_USER_ERRORS.items()
                  if module in sys.modules)
    return (FileNotFoundError, FileExistsError, PermissionError, OutputError, ConfigError, DataError,
            UnknownNameError, *heavy)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        print(f"error: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:  # before training installs its handler (which checkpoints, then exits 130)
        from foodmtl.exit_codes import INTERRUPTED

        print("interrupted (Ctrl-C)", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
