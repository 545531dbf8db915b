"""The names in a config, checked and spelt the registered way before any heavy import.

``foodmtl train`` imports torch, timm and torchmetrics (5-7 s) only after the config passed
these checks, so a misspelt strategy, data set, backbone or task is reported in well under 2 s
(benchmarks/config_error.py). Names come from light lists (foodmtl/names.py, KNOWN_TASKS,
the decoders' OPTIONS).
"""
from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Callable

from foodmtl.names import backbone_name, dataset_name, weighting_name
from foodmtl.registry import UnknownNameError, unknown_name_error
from foodmtl.tasks import KNOWN_TASKS

if TYPE_CHECKING:
    from foodmtl.config import Config

# Experiment and run names become folders (runs/<experiment>/<run>), the group a file-name prefix.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def resolve_names(cfg: Config) -> Config:
    """``cfg`` with its strategy, data set and backbone names as registered (``UW`` -> ``uncertainty``,
    ``tu-resnet50`` -> ``resnet50``); ConfigError naming the key on an unknown or unsafe name."""
    from foodmtl.config import ConfigError

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
    weighting = dataclasses.replace(cfg.weighting, name=named("weighting.name", weighting_name, cfg.weighting.name))
    return dataclasses.replace(cfg, data=data, model=model, weighting=weighting)


def checked_decoder(name: str, options: dict) -> str:
    """The decoder's registered name, its options checked (ConfigError naming the key)."""
    # Imported here: foodmtl.models.decoders.options imports foodmtl.config, which imports this module.
    from foodmtl.models.decoders import decoder_name, parse_options

    name = named("model.decoder", decoder_name, name)
    parse_options(name, options)
    return name


def task_name(name: str) -> str:
    if name not in KNOWN_TASKS:
        raise unknown_name_error("task", name, KNOWN_TASKS)
    return name


def named(key: str, resolve: Callable[[str], str], value: str) -> str:
    """``resolve(value)``, or a ConfigError that names the config key."""
    from foodmtl.config import ConfigError

    try:
        return resolve(value)
    except UnknownNameError as exc:
        raise ConfigError(f"{key}: {exc}") from None
