"""Rebuild a trained model from a checkpoint (no hub access: weights come from the file)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from foodmtl.config import Config, from_dict
from foodmtl.engine.checkpoint import CheckpointError, load_checkpoint
from foodmtl.models.multitask import MultiTaskModel, build_model
from foodmtl.tasks import TaskSpec


def tasks_from_checkpoint(state: dict) -> list[TaskSpec]:
    return [TaskSpec(t["name"], t["kind"], tuple(t["classes"])) for t in state["tasks"]]


def load_trained(path: str | Path, overrides: dict | None = None,
                 device: str | torch.device = "cpu") -> tuple[MultiTaskModel, Config, list[TaskSpec]]:
    state = load_checkpoint(path)
    cfg = from_dict({**state["config"], **(overrides or {})})
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, pretrained=False, pretrained_file=None))
    tasks = tasks_from_checkpoint(state)
    model = build_model(cfg.model, tasks)
    prefix = "model."
    weights = {k[len(prefix):]: v for k, v in state["objective"].items() if k.startswith(prefix)}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model in its config: {exc}") from None
    return model.to(device).eval(), cfg, tasks
