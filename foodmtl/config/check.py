"""The names in a config, checked and spelt the registered way before any heavy import.

``foodmtl train`` imports torch, timm and torchmetrics (5-7 s) only after the config passed
these checks, so a misspelt strategy, data set, backbone, task, optimizer or freeze spec is reported in
well under 2 s (benchmarks/config_error.py). Names come from light lists (foodmtl/config/names.py, KNOWN_TASKS,
the decoders' OPTIONS, OPTIMIZERS below).
"""
from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Callable

from foodmtl.config.names import backbone_name, dataset_name, weighting_name
from foodmtl.utils.registry import UnknownNameError, resolve_name, unknown_name_error
from foodmtl.config.decoders import decoder_name, parse_options
from foodmtl.config.tasks import KNOWN_TASKS
from foodmtl.errors import ConfigError

if TYPE_CHECKING:
    from foodmtl.config import Config

# Experiment and run names become folders (runs/<experiment>/<run>), the group a file-name prefix.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
# timm optimizers (create_optimizer_v2 names) that step plain parameter groups with no extra package;
# tests/test_optim.py checks each against timm.optim.list_optimizers() and takes a step with it.
OPTIMIZERS = ("adam", "adamp", "adamw", "lamb", "lars", "lion", "momentum", "nadamw", "nesterov", "rmsproptf", "sgd")
FREEZE = re.compile(r"none|backbone|stages:\d+")


def resolve_names(cfg: Config) -> Config:
    """``cfg`` with its strategy, data set and backbone names as registered (``UW`` -> ``uncertainty``,
    ``tu-resnet50`` -> ``resnet50``); ConfigError naming the key on an unknown or unsafe name."""
    for key, value in (("experiment", cfg.experiment), ("run", cfg.run), ("tracking.group", cfg.tracking.group)):
        if value is not None and not SAFE_NAME.fullmatch(value):
            raise ConfigError(f"{key}={value!r} is not a safe folder name: use letters, digits and . _ - "
                              "(no '/', not starting with '.')")
    for name in cfg.tasks:
        named("tasks", task_name, name)
    sources = [dataclasses.replace(s, dataset=named(f"data.sources[{i}].dataset", dataset_name, s.dataset))
               for i, s in enumerate(cfg.data.sources)]
    data = dataclasses.replace(cfg.data, dataset=named("data.dataset", dataset_name, cfg.data.dataset),
                               sources=sources)
    model = dataclasses.replace(cfg.model, backbone=named("model.backbone", backbone_name, cfg.model.backbone),
                                decoder=checked_decoder(cfg.model.decoder, cfg.model.decoder_options))
    model = dataclasses.replace(model, freeze=checked_freeze(cfg.model.freeze, cfg.train.unfreeze_at))
    weighting = dataclasses.replace(cfg.weighting, name=named("weighting.name", weighting_name, cfg.weighting.name))
    optim = dataclasses.replace(cfg.optim, name=named("optim.name", optimizer_name, cfg.optim.name))
    return dataclasses.replace(cfg, data=data, model=model, weighting=weighting, optim=optim)


def optimizer_name(name: str) -> str:
    return resolve_name("optimizer", name, OPTIMIZERS)


def checked_freeze(value: str, unfreeze_at: int) -> str:
    """``model.freeze`` as written canonically (``Stages: 2`` -> ``stages:2``); ConfigError naming the forms.
    Whether N fits the backbone is checked when the model is built (foodmtl/engine/freeze.py)."""
    spec = value.strip().lower().replace(" ", "")
    if not FREEZE.fullmatch(spec):
        raise ConfigError(f"model.freeze={value!r}; choose none, backbone (a linear probe: only heads and decoder "
                          "train) or stages:N (the stem and the first N stages, e.g. stages:2)")
    if unfreeze_at and spec == "none":
        raise ConfigError(f"train.unfreeze_at={unfreeze_at} unfreezes a frozen backbone, but model.freeze=none; "
                          "set model.freeze=backbone or stages:N")
    return spec


def checked_decoder(name: str, options: dict) -> str:
    """The decoder's registered name, its options checked (ConfigError naming the key)."""
    name = named("model.decoder", decoder_name, name)
    parse_options(name, options)
    return name


def task_name(name: str) -> str:
    if name not in KNOWN_TASKS:
        raise unknown_name_error("task", name, KNOWN_TASKS)
    return name


def named(key: str, resolve: Callable[[str], str], value: str) -> str:
    """``resolve(value)``, or a ConfigError that names the config key."""
    try:
        return resolve(value)
    except UnknownNameError as exc:
        raise ConfigError(f"{key}: {exc}") from None
