"""The one way a reader reports missing data: the path, and how to get it."""
from __future__ import annotations

from pathlib import Path


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
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split(maxsplit=1) if spaces_in_names else line.split()
        if len(fields) != 2 or fields[0] != str(len(names)):
            raise ValueError(f"{path}, line {number}: expected '{len(names)} <name>', got '{line}'")
        names.append(fields[1].strip())
    if not names:
        raise ValueError(f"{path} lists no classes")
    return names
