"""``foodmtl <command>``: the command-line entry point (commands live in foodmtl.commands).

A user mistake (bad config, missing file, bad data, unknown name) prints one ``error: ...``
line and exits 2, without a traceback; bugs keep their traceback.
"""
from __future__ import annotations

import argparse
import atexit
import gc
import logging
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# The last exit hook (registered first): move every live object out of the collector's reach, as the
# interpreter's teardown then runs several full collections over torch's, timm's and W&B's millions of
# objects (about 1 CPU second after a training run, benchmarks/run_cost.py); reference counts still free them.
atexit.register(gc.freeze)

from foodmtl.errors import INTERRUPTED, USAGE_ERROR, USER_ERRORS


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


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:
        if not isinstance(exc, USER_ERRORS):
            raise
        print(f"error: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:  # before training installs its handler (which checkpoints, then exits 130)
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
