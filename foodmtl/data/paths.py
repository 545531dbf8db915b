"""The one way a reader reports missing data (the path, and how to get it), and reads text and
JSON files so that a malformed one is a DataError naming its line."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from foodmtl.errors import DataError


def require_path(path: Path, dataset: str, how_to_get: str, alternative: Path | None = None) -> None:
    """Raise FileNotFoundError naming ``path`` (and ``alternative``, either may exist) and the remedy."""
    if path.exists() or (alternative is not None and alternative.exists()):
        return
    also = f" (and so is {alternative})" if alternative is not None else ""
    raise FileNotFoundError(f"{dataset} not found: {path} is missing{also}.\n  To get it: {how_to_get}")


ONE_WORD_NAME = re.compile(r"(\d+)\s+(\S+)")   # '<id> <name>', a name without spaces (FoodX-251)
SPACED_NAME = re.compile(r"(\d+)\s+(\S.*)")     # '<id> <name>', the rest of the line (FoodSeg103)


def read_numbered_names(path: Path, form: re.Pattern = ONE_WORD_NAME, shape: str = " <name>") -> list[str]:
    """Class names by id from numbered lines, ids 0, 1, 2, ... in file order; a non-blank line
    that ``form`` (groups: id, name) does not match whole, or whose id is out of turn, is a
    DataError showing ``'<expected id><shape>'``."""
    names: list[str] = []
    for number, line in numbered_lines(path).items():
        match = form.fullmatch(line)
        if match is None or int(match[1]) != len(names):
            raise DataError(path, f"expected '{len(names)}{shape}', got '{line}'", line=number)
        names.append(match[2].strip())
    if not names:
        raise DataError(path, "lists no classes")
    return names


def numbered_lines(path: Path) -> pd.Series:
    """The stripped non-blank lines, indexed by line number (CRLF and a byte-order mark read too)."""
    lines = pd.Series(read_text(path).splitlines(), dtype=str).str.strip()
    lines.index += 1
    return lines[lines != ""]


def read_text(path: Path) -> str:
    """The file's UTF-8 text, without a byte-order mark (editors on Windows write one); bytes
    that are not UTF-8 raise DataError naming their line."""
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})", line=data.count(b"\n", 0, exc.start) + 1) from None


def read_json(path: Path) -> object:
    """The file's JSON value; malformed JSON raises DataError naming its line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from None
