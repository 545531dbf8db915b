"""Atomic checkpoints (tmp file + os.replace) loaded with ``weights_only=True``.

A checkpoint holds only tensors and plain containers of str/int/float/bool/None,
so loading it never executes pickled code.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from foodmtl.errors import CheckpointError, OutputError
from foodmtl.utils.output import atomic_write


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Atomic; a full disk or unwritable folder raises OutputError and keeps the previous file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(path.parent, exc) from None
    atomic_write(path, lambda f: torch.save(state, f))


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


# What only resuming needs; last.pt (and step-*.pt) hold it, best.pt does not.
RESUMABLE = ("optimizer", "scheduler", "scaler", "train_state", "rng")


def weights_only(snapshot: dict[str, Any], metrics: dict[str, float]) -> dict[str, Any]:
    """best.pt: what eval, predict, embed and fine-tuning read (weights, config, tasks) plus the
    metrics and step it scored. AdamW keeps two moments per weight, so dropping the optimizer
    state makes it about a third of last.pt. (timm's CheckpointSaver hard-links last to best instead:
    free while both are the same step, a second full file once last.pt moves on.)"""
    state = snapshot["train_state"]
    return {"objective": snapshot["objective"], "config": snapshot["config"], "tasks": snapshot["tasks"],
            "step": state["step"], "epoch": state["epoch"], "metrics": dict(metrics)}


def require_resumable(state: dict[str, Any], path: str | Path) -> None:
    """CheckpointError unless ``state`` can continue training (a best.pt cannot)."""
    missing = [k for k in RESUMABLE if k not in state]
    if missing:
        raise CheckpointError(f"{path} holds weights only (no {', '.join(missing)} state), so training cannot "
                              "continue from it exactly; resume from the run's checkpoints/last.pt instead "
                              "(eval, predict and embed read either file)")
