"""Atomic checkpoints (tmp file + os.replace) loaded with ``weights_only=True``.

A checkpoint holds only tensors and plain containers of str/int/float/bool/None,
so loading it never executes pickled code.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated or not a foodmtl checkpoint."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}\n  train one with: foodmtl train CONFIG")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path} (truncated or corrupt?): {exc}") from None
    if not isinstance(state, dict) or "objective" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not a foodmtl checkpoint (no 'objective'/'config' entries)")
    return state
