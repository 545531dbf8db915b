"""The one way a reader reports missing data: the path, and how to get it."""
from __future__ import annotations

from pathlib import Path


def require_path(path: Path, dataset: str, how_to_get: str, alternative: Path | None = None) -> None:
    """Raise FileNotFoundError naming ``path`` (and ``alternative``, either may exist) and the remedy."""
    if path.exists() or (alternative is not None and alternative.exists()):
        return
    also = f" (and so is {alternative})" if alternative is not None else ""
    raise FileNotFoundError(f"{dataset} not found: {path} is missing{also}.\n  To get it: {how_to_get}")
