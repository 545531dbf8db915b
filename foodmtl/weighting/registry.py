"""The registry of loss-weighting strategies."""
from foodmtl.registry import Registry

WEIGHTINGS: Registry = Registry("weighting strategy")
