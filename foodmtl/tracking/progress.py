"""Progress bars as training shows them: tqdm on a terminal only, so log files and pipes get none."""
from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm import tqdm


def on_terminal() -> bool:
    return sys.stderr.isatty()


def progress(iterable: Iterable | None = None, desc: str = "", total: int | None = None, unit: str = "it",
             enabled: bool = True) -> tqdm:
    """A tqdm bar over ``iterable`` (or updated by hand), shown when ``enabled`` and stderr is a
    terminal; it clears itself when done (``leave=False``), like training's epoch bars."""
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, disable=not (enabled and on_terminal()))
