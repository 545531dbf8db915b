"""Loss-weighting strategies; importing this package registers all of them."""
from foodmtl.weighting import (cagrad, dwa, famo, gradnorm, imtl, manual, mgda,  # noqa: F401  (registration)
                               nashmtl, pcgrad, rlw, uncertainty, uniform)
from foodmtl.errors import ConfigError
from foodmtl.weighting.base import WeightedLoss, WeightingStrategy
from foodmtl.weighting.registry import WEIGHTINGS


def build_weighting(name: str, tasks: list[str], options: dict | None = None,
                    likelihoods: dict[str, str] | None = None, lr: float | None = None) -> WeightingStrategy:
    """Instantiate strategy ``name`` over ``tasks`` with its config options; ``likelihoods`` (task ->
    ``TaskKind.likelihood``, ``gaussian`` or ``categorical``) lets a strategy treat each task by its
    likelihood (uncertainty weighting); ``lr`` (``weighting.lr``) is the learning rate of what the
    strategy learns: its ``own_lr_option`` (FAMO) or its parameters' optimizer group. ConfigError where
    the strategy learns nothing, or where the option is given twice."""
    cls = WEIGHTINGS.get(name)
    options = dict(options or {})
    if lr is not None and cls.own_lr_option:
        if cls.own_lr_option in options:
            raise ConfigError(f"weighting.lr={lr} and weighting.options.{cls.own_lr_option}="
                              f"{options[cls.own_lr_option]} both set {name}'s learning rate; keep one")
        options[cls.own_lr_option] = lr
    strategy = cls(tasks, **options)
    if lr is not None and not cls.own_lr_option:
        if not any(p.requires_grad for p in strategy.parameters()):
            raise ConfigError(f"weighting.lr={lr}: {name} learns no parameters, so it has no learning rate; "
                              "drop weighting.lr")
        strategy.lr = lr
    strategy.likelihoods = dict(likelihoods or {})
    return strategy


__all__ = ["WEIGHTINGS", "WeightedLoss", "WeightingStrategy", "build_weighting"]
