"""Split lists of one image a line (VireoFood-172's TR/VAL/TE.txt, UEC-FoodPix's train9000.txt /
test1000.txt): their lines by number, and the rule that an image is listed once across all lists
(one in two splits would be trained and tested on)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from foodmtl.errors import DataError
from foodmtl.data.paths import read_text


def numbered_lines(path: Path) -> pd.Series:
    """The stripped non-blank lines, indexed by line number (CRLF and a byte-order mark read too)."""
    lines = pd.Series(read_text(path).splitlines(), dtype=str).str.strip()
    lines.index += 1
    return lines[lines != ""]


def require_listed_once(path: Path, keys: pd.Series, lines: pd.Series, earlier: dict[Path, pd.Series]) -> None:
    """DataError at the first of ``keys`` (indexed like ``lines``, which are shown) that repeats in
    this list or is in an ``earlier`` list (path -> its keys); then adds this list to ``earlier``."""
    again = keys.duplicated()
    if again.any():
        line = int(again.idxmax())
        raise DataError(path, f"'{lines[line]}' is listed twice (also line {keys.index[keys == keys[line]][0]})",
                        line=line)
    for other, listed in earlier.items():
        shared = keys.isin(listed)
        if shared.any():
            line = int(shared.idxmax())
            raise DataError(path, f"'{lines[line]}' is also listed in {other.name}, line "
                                  f"{listed.index[listed == keys[line]][0]}", line=line)
    earlier[path] = keys
