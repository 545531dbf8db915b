"""A tuning stage's search space and its trials: the same number of configurations for every method.

A space maps config keys to value specs::

    optim.lr: {log: [3.0e-4, 1.0e-2]}     # log-uniform in [lo, hi]
    optim.weight_decay: [0.0, 0.05]        # choices
    weighting.options.T: {uniform: [1.0, 4.0]}
    weighting.options.update_every: {int: [1, 5]}   # an integer in [lo, hi]

Two samplers. ``random`` (Bergstra & Bengio, JMLR 2012: with few trials, random search covers the
dimensions that matter better than a grid): trial k of a method draws from a generator seeded by
(``tune.seed``, method, k) alone, so adding a method or a trial never changes another one's draws;
continuous draws are rounded to 3 significant digits, so names, configs and the table read cleanly.
``grid``: every combination of the choices (lists only), which must number exactly ``trials``, so
every method spends the same budget (Xin et al., "Do current multi-task optimization methods in
deep learning even help?", NeurIPS 2022: compare methods tuned with equal effort).
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

import yaml

from foodmtl.errors import ConfigError

SAMPLERS = ("random", "grid")
RANGES = ("log", "uniform", "int")
DIGITS = 3  # significant digits of a continuous draw


@dataclass(frozen=True)
class Dimension:
    form: str                   # choice | log | uniform | int
    values: tuple[Any, ...]     # the choices, or (lo, hi)

    def draw(self, rng: random.Random) -> Any:
        if self.form == "choice":
            return self.values[rng.randrange(len(self.values))]
        lo, hi = self.values
        if self.form == "int":
            return rng.randint(int(lo), int(hi))
        value = math.exp(rng.uniform(math.log(lo), math.log(hi))) if self.form == "log" else rng.uniform(lo, hi)
        return float(f"{value:.{DIGITS}g}")


def parse_space(raw: Any, where: str) -> dict[str, Dimension]:
    """``{key: spec}`` -> ``{key: Dimension}``; ConfigError naming ``where`` and the key on a bad spec."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must map config keys to value specs, e.g. optim.lr: {{log: [1.0e-4, 1.0e-2]}}")
    return {str(key): dimension(spec, f"{where}.{key}") for key, spec in raw.items()}


def dimension(spec: Any, where: str) -> Dimension:
    if isinstance(spec, list) and spec:
        return Dimension("choice", tuple(spec))
    if isinstance(spec, dict) and len(spec) == 1:
        (form, bounds), = spec.items()
        if form in RANGES and isinstance(bounds, list) and len(bounds) == 2 and all(
                isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds):
            lo, hi = bounds
            if not lo <= hi or form == "log" and not lo > 0:
                raise ConfigError(f"{where}: {form} bounds [{lo}, {hi}] must be ordered" +
                                  (" and > 0" if form == "log" else ""))
            return Dimension(form, (lo, hi))
    raise ConfigError(f"{where}={spec!r}: give a list of choices or one of "
                      f"{', '.join(f'{{{k}: [lo, hi]}}' for k in RANGES)}")


def trials(space: dict[str, Dimension], count: int, sampler: str, seed: int, method: str) -> list[dict[str, Any]]:
    """``count`` configurations ``{key: value}`` of ``method`` (see the module docstring)."""
    if sampler == "grid":
        return grid(space, count, method)
    return [{key: dim.draw(random.Random(f"{seed}/{method}/{k}/{key}")) for key, dim in space.items()}
            for k in range(count)]


def grid(space: dict[str, Dimension], count: int, method: str) -> list[dict[str, Any]]:
    ranged = [key for key, dim in space.items() if dim.form != "choice"]
    if ranged:
        raise ConfigError(f"tune.sampler=grid needs lists of choices; {method}'s {', '.join(ranged)} "
                          "is a range (use sampler: random)")
    points = [dict(zip(space, values)) for values in itertools.product(*(dim.values for dim in space.values()))]
    if len(points) != count:
        raise ConfigError(f"tune.sampler=grid: {method}'s grid has {len(points)} points, tune.trials={count}; "
                          "every method must get the same number of trials")
    return points


def override(key: str, value: Any) -> str:
    """``key=value`` that the config loader reads back as ``value`` (YAML 1.1 reads ``1e-05`` as text,
    so floats are written as PyYAML writes them, ``1.0e-05``)."""
    return f"{key}={flow(value)}"


def flow(value: Any) -> str:
    """``value`` as one line of YAML flow style."""
    return yaml.safe_dump(value, default_flow_style=True, width=math.inf).split("\n...")[0].strip()
