"""Rebuild a trained model from a checkpoint (no hub access: weights come from the file), and
find the data of its config from wherever ``eval``/``embed`` run: a relative ``data.root`` is
looked up first in the folder the training was started in (``launch_dir``, recorded by the
trainer), then here; one that is nowhere is a ConfigError that says to pass ``data.root=``.
A root given as an override is used as typed."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from foodmtl.errors import ConfigError
from foodmtl.config import Config, DataConfig, deep_merge, from_dict, parse_override, set_dotted
from foodmtl.tasks import task_options
from foodmtl.data.builder import DataBundle, build_data
from foodmtl.engine.checkpoint import CheckpointError, load_checkpoint
from foodmtl.models.multitask import MultiTaskModel, build_model
from foodmtl.tasks import TaskSpec


IDENTITY = ("name", "kind", "classes")  # what must match between a checkpoint and the data


def task_table(tasks: list[TaskSpec]) -> list[dict]:
    """Tasks as checkpoints store them (options and stats only where a kind has them)."""
    table = []
    for t in tasks:
        row = {"name": t.name, "kind": t.kind, "classes": list(t.classes)}
        row.update({k: dict(v) for k, v in (("options", t.options), ("stats", t.stats)) if v})
        table.append(row)
    return table


def tasks_from_checkpoint(state: dict) -> list[TaskSpec]:
    return [TaskSpec(t["name"], t["kind"], tuple(t["classes"]), dict(t.get("options", {})),
                     dict(t.get("stats", {}))) for t in state["tasks"]]


def require_same_tasks(saved: list[dict], tasks: list[TaskSpec], remedy: str) -> None:
    """ConfigError unless a checkpoint's task table matches the data's tasks and classes."""
    def identity(table: list[dict]) -> list[tuple]:
        return [tuple(tuple(t[k]) if k == "classes" else t[k] for k in IDENTITY) for t in table]

    if identity(saved) == identity(task_table(tasks)):
        return
    def brief(table: list[dict]) -> str:
        return ", ".join(f"{t['name']}({len(t['classes'])})" for t in table)
    raise ConfigError(f"the checkpoint's tasks or class lists differ from this data's: {brief(saved)} vs "
                      f"{brief(task_table(tasks))}; {remedy}")


def load_trained(path: str | Path, overrides: dict | None = None,
                 device: str | torch.device = "cpu") -> tuple[MultiTaskModel, Config, list[TaskSpec]]:
    """The model of a full (last.pt) or weights-only (best.pt) checkpoint: both hold the
    weights, the config (``overrides`` deep-merged into it) and the tasks."""
    state = load_checkpoint(path)
    cfg = from_dict(deep_merge(state["config"], overrides or {}))
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


def load_with_data(path: str | Path, override_items: list[str],
                   device: str | torch.device = "cpu") -> tuple[MultiTaskModel, Config, DataBundle]:
    """A trained model and the data of its config (``key=value`` overrides, e.g. ``data.root=...``),
    checked to carry the classes the model was trained on."""
    overrides: dict = {}
    for item in override_items:
        set_dotted(overrides, *parse_override(item))
    model, cfg, tasks = load_trained(path, overrides, device)
    data = build_data(located(cfg.data, cfg.launch_dir, overrides.get("data") or {}), [t.name for t in tasks],
                      cfg.train.seed, task_options(cfg))
    require_same_tasks(task_table(tasks), data.tasks, "use the data it was trained on")
    return model, cfg, data


def located(data: DataConfig, launch_dir: str | None, given: dict) -> DataConfig:
    """``data`` with the roots saved in the run's config found from here (see the module docstring);
    ``given``: the ``data.*`` overrides, whose roots stay as typed. With ``data.sources`` only
    theirs are read."""
    if not data.sources and "root" not in given:
        data = dataclasses.replace(data, root=find_root("data.root", data.root, launch_dir))
    if data.sources and "sources" not in given:
        data = dataclasses.replace(data, sources=[
            dataclasses.replace(s, root=find_root(f"data.sources[{i}].root", s.root, launch_dir))
            for i, s in enumerate(data.sources)])
    return data


def find_root(key: str, root: str, launch_dir: str | None) -> str:
    """The saved ``root`` as a path that exists from here: an absolute one as it is; a relative one
    under ``launch_dir`` first, then under the current folder."""
    if os.path.isabs(root):
        places = {Path(root): ""}
    else:
        places = {Path(launch_dir) / root: " (where the run was started)"} if launch_dir else {}
        places[Path.cwd() / root] = " (here)"
    for place in places:
        if place.exists():
            return str(place)
    looked = " nor ".join(f"{place}{where}" for place, where in places.items())
    raise ConfigError(f"{key}={root} not found: no {looked}; pass {key}=PATH")
