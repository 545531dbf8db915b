"""One module per ``foodmtl`` sub-command; each defines ``register(subparsers)``.

Modules import their heavy dependencies inside ``run`` so ``foodmtl --help`` stays fast and a
bad config is reported before torch is imported.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import textwrap


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default where it has one (not "None"/"False"), and the example as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)


def add_command(sub, name: str, help: str, example: str) -> argparse.ArgumentParser:
    """A sub-command parser whose ``--help`` shows defaults and ``example`` (one command line)."""
    # Raw text keeps the example's line as written, so the description is wrapped here; argparse
    # %-formats a help line, not a description.
    description = textwrap.fill(help.replace("%%", "%"), width=79)
    return sub.add_parser(name, help=help, description=description, epilog=f"example:\n  {example}",
                          formatter_class=HelpFormatter)


def command_modules() -> list:
    """Every module in this package that defines ``register`` (helpers like ``report`` do not)."""
    modules = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    return [m for m in modules if hasattr(m, "register")]
