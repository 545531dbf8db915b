"""Linear scalarization sweeps: fixed task weights over a grid, the baseline front that a
weighting strategy has to beat (sweep key ``scalarization``).

A linear scalarization trains Σ_t w_t L_t with fixed weights (``weighting.name=manual``); its
models over a grid of w trace the trade-off a fixed weighting reaches. Xin et al. 2022 ("Do Current
Multi-Task Optimization Methods in Deep Learning Even Help?", NeurIPS) compare the adaptive
strategies with exactly this front. In a sweep file::

    scalarization:
      weights: [{dish: 2, ingredients: 0}, {dish: 1, ingredients: 1}]   # these vectors, or
      simplex: {steps: 4, tasks: [dish, ingredients]}                     # evenly spaced ones

``weights``: every vector names every task of the runs (one left out would silently keep manual's
default 1), each weight a finite number >= 0, not all 0. ``simplex``: the named tasks (default:
all; at least two) get weights k_t · n/steps for every split of ``steps`` into n whole k_t >= 0,
so they sum to n as uniform's weights do, and every other task keeps weight 1; with ``steps`` a
multiple of n the middle point is uniform's loss. Each vector is a method
``scalarization-<task><weight>-...`` (tasks in the runs' order), run for every seed like the
sweep's other methods.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from foodmtl.errors import ConfigError
from foodmtl.utils.registry import unknown_name_error

PREFIX = "scalarization-"
KEYS = ("weights", "simplex")


@dataclass(frozen=True)
class Scalarization:
    weights: tuple[dict[str, Any], ...] = ()   # explicit vectors, as written
    steps: int = 0                             # > 0: the simplex grid instead
    tasks: tuple[str, ...] = ()                # the simplex's tasks; empty: all the runs' tasks


def is_scalarization(method: str) -> bool:
    return method.startswith(PREFIX)


def read_scalarization(raw: Any, where: str) -> Scalarization | None:
    """The sweep file's ``scalarization`` value (None when absent); ConfigError on its shape."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in KEYS:
        raise ConfigError(f"{where}: scalarization takes one of weights: [{{task: w, ...}}, ...] or "
                          f"simplex: {{steps: N, tasks: [...]}}, not {raw}")
    if "weights" in raw:
        vectors = raw["weights"]
        if not isinstance(vectors, list) or not vectors or not all(isinstance(v, dict) for v in vectors):
            raise ConfigError(f"{where}: scalarization.weights must be a list of {{task: weight}} mappings")
        return Scalarization(weights=tuple(vectors))
    simplex = raw["simplex"]
    steps = simplex.get("steps") if isinstance(simplex, dict) else None
    tasks = simplex.get("tasks") if isinstance(simplex, dict) else None
    if (set(simplex or {}) - {"steps", "tasks"} or not isinstance(steps, int) or isinstance(steps, bool) or steps < 1
            or not isinstance(tasks, (list, type(None)))):
        raise ConfigError(f"{where}: scalarization.simplex takes steps (a whole number >= 1) and optionally tasks "
                          f"(a list), not {simplex}")
    return Scalarization(steps=steps, tasks=tuple(tasks or ()))


def methods(spec: Scalarization, tasks: list[str]) -> dict[str, list[str]]:
    """Method name -> its overrides, one per weight vector, for runs of ``tasks``."""
    vectors = list(simplex(spec.steps, list(spec.tasks) or tasks, tasks)) if spec.steps else list(spec.weights)
    out: dict[str, list[str]] = {}
    for vector in vectors:
        weights = checked(vector, tasks)
        name = PREFIX + "-".join(f"{t}{weights[t]:g}" for t in tasks)
        if name in out:
            raise ConfigError(f"scalarization weights {vector} repeat a vector ({name})")
        spelled = ", ".join(f"{t}: {weights[t]!r}" for t in tasks)
        out[name] = ["weighting.name=manual", f"weighting.options.weights={{{spelled}}}"]
    return out


def with_points(named: dict[str, list[str]], spec: Scalarization, tasks: list[str]) -> dict[str, list[str]]:
    """A sweep's ``methods`` followed by the scalarization points; ConfigError where a name is both."""
    points = methods(spec, tasks)
    clash = sorted(set(points) & set(named))
    if clash:
        raise ConfigError(f"method {clash[0]} is also a scalarization point; rename it")
    return named | points


def simplex(steps: int, named: list[str], tasks: list[str]) -> Iterator[dict[str, float]]:
    """The evenly spaced vectors of the module docstring, the first named task's weight falling."""
    for task in named:
        if task not in tasks:
            raise unknown_name_error("task in scalarization.simplex.tasks", task, tasks)
    if len(set(named)) < 2 or len(set(named)) < len(named):
        raise ConfigError(f"scalarization.simplex.tasks {named}: name at least two different tasks of {tasks}")
    for split in compositions(steps, len(named)):
        varied = {t: k * len(named) / steps for t, k in zip(named, split)}
        yield {t: varied.get(t, 1.0) for t in tasks}


def compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    """Every tuple of ``parts`` whole numbers >= 0 summing to ``total``, the first falling."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total, -1, -1):
        for rest in compositions(total - first, parts - 1):
            yield (first, *rest)


def checked(vector: dict[str, Any], tasks: list[str]) -> dict[str, float]:
    """``vector`` as floats; ConfigError (one line) on an unknown or missing task or a bad weight."""
    for task in vector:
        if task not in tasks:
            raise unknown_name_error("task in scalarization weights", str(task), tasks)
    missing = [t for t in tasks if t not in vector]
    if missing:
        raise ConfigError(f"scalarization weights {vector} leave out {', '.join(missing)}: name every task of "
                          f"the runs ({', '.join(tasks)})")
    for task, value in vector.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"scalarization weights {vector}: {task}={value} must be a finite number >= 0")
    if not any(vector.values()):
        raise ConfigError(f"scalarization weights {vector}: at least one weight must be > 0")
    return {t: float(vector[t]) for t in tasks}
