"""The rule that a list names each key once, also across a data set's lists (an image in two
splits would be trained and tested on): Food-101's classes.txt and train/test lists (.txt or
.json), FoodX-251's label files, VireoFood-172's TR/VAL/TE.txt, UEC-FoodPix's train9000.txt /
test1000.txt."""
from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import pandas as pd

from foodmtl.errors import DataError


def require_listed_once(path: Path, keys: pd.Series, shown: pd.Series | None = None,
                        earlier: dict[str, pd.Series] | None = None, what: str = "",
                        known_as: str | None = None) -> None:
    """DataError at the first of ``keys`` that repeats in this list, then at the first that is in
    an ``earlier`` list (its name -> its keys), which this list then joins as ``known_as`` (default:
    its file name). ``keys`` are indexed by line number (a .json list's by position, not shown);
    ``shown``: the keys as the file writes them (default: the keys); ``what``: the noun in front
    of a repeated one ("image")."""
    shown = keys if shown is None else shown
    again = keys.duplicated()
    if again.any():
        line = int(again.idxmax())
        first = f" (also line {keys.index[keys == keys[line]][0]})" if numbered(path) else ""
        fail(path, f"{what + ' ' if what else ''}'{shown[line]}' is listed twice{first}", line)
    for other, listed in (earlier or {}).items():
        shared = keys.isin(listed)
        if shared.any():
            line = int(shared.idxmax())
            where = f", line {listed.index[listed == keys[line]][0]}" if numbered(Path(other)) else ""
            fail(path, f"'{shown[line]}' is also listed in {other}{where}", line)
    if earlier is not None:
        earlier[known_as or path.name] = keys


def numbered(path: Path) -> bool:
    """Whether a list's keys are indexed by line number (a .json list's are positions)."""
    return path.suffix != ".json"


def fail(path: Path, what: str, line: int) -> NoReturn:
    raise DataError(path, what, line=line if numbered(path) else None)
