"""Which runs may share a table: runs that measured the same thing.

Numbers from other data, another backbone, another task set or training budget neither average
nor compare, so ``foodmtl table`` refuses such a mix and names the keys that differ, with their
values and runs; ``--where KEY=VALUE`` (or ``--group``) then picks one setting. Two tiers:

* SETTING keys must agree across all runs: the data a number is measured on, the backbone and its
  initialisation, the training budget, and the task set of the multi-task runs (single-task
  baselines differ in ``tasks`` by design; ``foodmtl.analysis.tables.is_single`` recognises them);
* every other config key but the INCIDENTAL ones must agree among the seeds of one method: those
  keys (``weighting.*``, ``optim.*``, ...) are what an ablation varies between methods, never
  between the seeds that are averaged.

INCIDENTAL keys change no number: names, tracking, the seed, logging, resources, how a run was
resumed, and ``train.best_metric`` (it picks best.pt; tables read the last evaluation). Keys
outside the config schema (W&B adds ``git_sha``, ``world_size``) are ignored; a key missing from
an older run's config counts as its default.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

from foodmtl.config import Config, parse_override, to_dict

from foodmtl.errors import ConfigError
from foodmtl.utils.registry import unknown_name_error
from foodmtl.analysis.runs import Run
from foodmtl.analysis.tables import is_single

SETTING = ("data.dataset", "data.root", "data.taxonomy", "data.sources", "data.train_split", "data.eval_split",
           "data.val_fraction", "data.val_seed",
           "data.image_size", "data.limit", "model.backbone", "model.pretrained", "model.pretrained_file",
           "train.epochs", "train.max_steps")
INCIDENTAL = ("run", "experiment", "output_dir", "tracking", "resume", "resume_override", "resumed_from",
              "resume_changes", "launch_dir", "train.seed", "train.device", "train.progress", "train.log_every",
              "train.checkpoint_every", "train.keep_checkpoints", "train.overlays", "train.compile",
              "train.best_metric", "data.num_workers", "data.eval_batch_size", "data.strict", "model.channels_last",
              "train.cudnn_benchmark", "train.grad_diagnostics_every", "train.grad_diagnostics_shared")
BUDGET = ("selection.trials", "selection.sampler", "selection.seeds", "selection.split")  # of a tuned run
UNSET = "(unset)"
SHOWN_RUNS = 2  # run names quoted per value in a message


def select(runs: list[Run], where: list[str]) -> list[Run]:
    """The runs whose config has every ``KEY=VALUE`` of ``where`` (values parsed as overrides are)."""
    for item in where:
        key, value = parse_override(item)
        value = sorted(value) if key == "tasks" and isinstance(value, list) else value
        known = {k for r in runs for k in settings(r)}
        if key not in known:
            raise unknown_name_error("config key", key, known)
        runs = [r for r in runs if canonical(settings(r).get(key)) == canonical(value)]
        if not runs:
            raise ConfigError(f"no run has {item} (--where {' '.join(where)})")
    return runs


def check_comparable(runs: list[Run]) -> None:
    """Raise ConfigError naming the keys whose values differ where they must agree."""
    multi = [r for r in runs if not is_single(r.method)]
    differ = differences(runs, lambda key: matches(key, SETTING))
    differ += differences(multi, lambda key: key == "tasks")
    if differ:
        raise ConfigError(f"these runs measure different things, so one table would mix them: they differ in "
                          f"{'; '.join(text for text, _ in differ)}. Table one setting, e.g. --where {differ[0][1]}")
    for method in sorted({r.method for r in runs}):
        same = [r for r in runs if r.method == method]
        differ = differences(same, lambda key: not matches(key, INCIDENTAL))
        if differ:
            raise ConfigError(f"the runs of {method} differ in {'; '.join(text for text, _ in differ)}, "
                              f"so they are not seeds of one setting. Keep one, e.g. --where {differ[0][1]}")


def check_tuning(runs: list[Run]) -> None:
    """Tuned runs (a ``selection`` in their config, written by a sweep's tuning stage) share a table only
    with tuned runs, and only with those tuned with the same budget: the same trials, sampler and
    trial seeds (the criterion may differ: baselines select on their own metric). ConfigError otherwise."""
    tuned = [r for r in runs if r.config.get("selection")]
    if 0 < len(tuned) < len(runs):
        untuned = [r.name for r in runs if not r.config.get("selection")]
        raise ConfigError(f"tuned and untuned runs: {len(tuned)} run(s) were tuned by a sweep's tuning stage "
                          f"({names([r.name for r in tuned])}) and {len(untuned)} were not ({names(untuned)}); choose "
                          "with --where selection.trials=null (the untuned) or --where selection.trials=N (the tuned)")
    differ = differences(tuned, lambda key: key in BUDGET)
    if differ:
        raise ConfigError(f"these runs were tuned with different budgets: {'; '.join(text for text, _ in differ)}. "
                          f"Table one budget, e.g. --where {differ[0][1]}")


def differences(runs: list[Run], relevant: Callable[[str], bool]) -> list[tuple[str, str]]:
    """Per relevant key with more than one value: ``key (value: runs; ...)``, and ``key=value`` for
    the value most runs have."""
    flat = [settings(r) for r in runs]
    out = []
    for key in sorted({k for f in flat for k in f if relevant(k)}):
        by_value: dict[str, list[str]] = {}
        for run, values in zip(runs, flat):
            by_value.setdefault(canonical(values.get(key, UNSET)), []).append(run.name)
        if len(by_value) > 1:
            listed = "; ".join(f"{value}: {names(runs_)}" for value, runs_ in by_value.items())
            out.append((f"{key} ({listed})", f"{key}={max(by_value, key=lambda v: len(by_value[v]))}"))
    return out


def settings(run: Run) -> dict[str, Any]:
    """The run's config as dotted keys of the schema, defaults filled in; ``tasks`` as a sorted list."""
    schema = {f.name for f in dataclasses.fields(Config)}
    values = defaults() | {k: v for k, v in flatten(run.config).items() if k.split(".", 1)[0] in schema}
    return values | {"tasks": sorted(values.get("tasks") or [])}


@functools.cache
def defaults() -> dict[str, Any]:
    return flatten(to_dict(Config()))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def matches(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def canonical(value: Any) -> str:
    """One spelling per value, as a user writes it in ``--where``: ``resnet18``, ``128``, ``[dish, mass]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(canonical(v) for v in value) + "]"
    return json.dumps(value, sort_keys=True)


def names(runs: list[str]) -> str:
    shown = ", ".join(runs[:SHOWN_RUNS])
    return shown + (f" and {len(runs) - SHOWN_RUNS} more" if len(runs) > SHOWN_RUNS else "")
