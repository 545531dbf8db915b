"""The one way a reader reports missing data (the path, and how to get it), and reads text and
JSON files so that a malformed one is a DataError naming its line."""
from __future__ import annotations

import json
from pathlib import Path

from foodmtl.errors import DataError


def require_path(path: Path, dataset: str, how_to_get: str, alternative: Path | None = None) -> None:
    """Raise FileNotFoundError naming ``path`` (and ``alternative``, either may exist) and the remedy."""
    if path.exists() or (alternative is not None and alternative.exists()):
        return
    also = f" (and so is {alternative})" if alternative is not None else ""
    raise FileNotFoundError(f"{dataset} not found: {path} is missing{also}.\n  To get it: {how_to_get}")


def read_numbered_names(path: Path, spaces_in_names: bool) -> list[str]:
    """Class names by id from ``<id> <name>`` lines (tab or space), ids 0, 1, 2, ... in file order.

    ``spaces_in_names``: the rest of the line is the name (FoodSeg103); otherwise a line
    must hold exactly two fields (FoodX-251).
    """
    names: list[str] = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split(maxsplit=1) if spaces_in_names else line.split()
        if len(fields) != 2 or fields[0] != str(len(names)):
            raise DataError(path, f"expected '{len(names)} <name>', got '{line}'", line=number)
        names.append(fields[1].strip())
    if not names:
        raise DataError(path, "lists no classes")
    return names


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
