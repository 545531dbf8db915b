"""Loss-weighting strategies; importing this package registers all of them."""
from foodmtl.weighting import (cagrad, dwa, famo, gradnorm, imtl, manual, mgda,  # noqa: F401  (registration)
                               nashmtl, pcgrad, rlw, uncertainty, uniform)
from foodmtl.weighting.base import WeightedLoss, WeightingStrategy
from foodmtl.weighting.registry import WEIGHTINGS


def build_weighting(name: str, tasks: list[str], options: dict | None = None,
                    kinds: dict[str, str] | None = None) -> WeightingStrategy:
    """Instantiate strategy ``name`` over ``tasks`` with its config options; ``kinds`` (task ->
    task kind) lets a strategy pick each task's likelihood (uncertainty weighting)."""
    strategy = WEIGHTINGS.get(name)(tasks, **(options or {}))
    strategy.task_kinds = dict(kinds or {})
    return strategy


__all__ = ["WEIGHTINGS", "WeightedLoss", "WeightingStrategy", "build_weighting"]
