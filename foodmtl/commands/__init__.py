"""One module per ``foodmtl`` sub-command; each defines ``register(subparsers)``.

Modules import their heavy dependencies inside ``run`` so ``foodmtl --help`` stays fast.
"""
from __future__ import annotations

import importlib
import pkgutil


def command_modules() -> list:
    """Every module in this package that defines ``register`` (helpers like ``report`` do not)."""
    modules = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    return [m for m in modules if hasattr(m, "register")]
