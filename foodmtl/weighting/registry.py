"""The registry of loss-weighting strategies; LibMTL's names work as aliases (``UW``, ``EW``, ``Nash_MTL``)."""
from foodmtl.config.names import WEIGHTING_ALIASES
from foodmtl.utils.registry import Registry

WEIGHTINGS: Registry = Registry("weighting strategy", aliases=WEIGHTING_ALIASES)
