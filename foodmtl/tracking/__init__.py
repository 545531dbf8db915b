"""Experiment tracking: local run files and W&B behind one rank-0 facade."""
from foodmtl.tracking.tracker import NullTracker, Tracker

__all__ = ["NullTracker", "Tracker"]
