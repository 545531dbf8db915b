"""Loss-weighting strategies; importing this package registers all of them."""
from foodmtl.weighting import (cagrad, dwa, famo, gradnorm, imtl, manual, mgda,  # noqa: F401  (registration)
                               nashmtl, pcgrad, rlw, uncertainty, uniform)
from foodmtl.weighting.base import WeightedLoss, WeightingStrategy
from foodmtl.weighting.registry import WEIGHTINGS


def build_weighting(name: str, tasks: list[str], options: dict | None = None,
                    likelihoods: dict[str, str] | None = None) -> WeightingStrategy:
    """Instantiate strategy ``name`` over ``tasks`` with its config options; ``likelihoods`` (task ->
    ``TaskKind.likelihood``, ``gaussian`` or ``categorical``) lets a strategy treat each task by its
    likelihood (uncertainty weighting)."""
    strategy = WEIGHTINGS.get(name)(tasks, **(options or {}))
    strategy.likelihoods = dict(likelihoods or {})
    return strategy


__all__ = ["WEIGHTINGS", "WeightedLoss", "WeightingStrategy", "build_weighting"]
