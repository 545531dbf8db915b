"""Pareto fronts: the linear-scalarization points of a group of runs, the front they span, and
which methods that front dominates.

The points are the ``scalarization-*`` methods (``foodmtl/analysis/scalarization.py``), each at its
mean over seeds; the front is the points no other point dominates. Over k metric columns with
their directions (``foodmtl.tasks.metric_direction``), a dominates b when a's mean is at least as
good on every column and better on one; a missing (NaN) mean dominates nothing and is dominated by
nothing. A method is *dominated by the front* when a front point dominates it, which is the same as
some scalarization point dominating it. Means are compared in display units (fractions in %), as
the table shows them, and on every metric column the table shows (Δm% is a function of them).

Only trained points count, never the segments between two front points: a point on a segment is
no model one can train (metrics are not linear in the weights, and a non-convex trade-off bends
inward between points, where no weighting reaches). A per-image coin flip between the two models
would reach the segment for per-image averages such as top-1 or MAE, but not for mAP or F1, and
is no model anyone deploys. So "dominated" claims only what a trained model shows.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from foodmtl.errors import ConfigError
from foodmtl.analysis.runs import Run
from foodmtl.analysis.scalarization import PREFIX, is_scalarization
from foodmtl.analysis.seed_stats import Estimate
from foodmtl.analysis.tables import Summary, figures_note, is_single, runs_frame, runs_units, summarize
from foodmtl.tasks import Direction


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[Direction]) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every metric and better on one."""
    if any(math.isnan(x) for x in (*a, *b)):
        return False
    signs = [1.0 if d == "max" else -1.0 for d in directions]
    gains = [s * (x - y) for s, x, y in zip(signs, a, b)]
    return all(g >= 0 for g in gains) and any(g > 0 for g in gains)


def means(summary: Summary, method: str) -> list[float]:
    return [summary.cells[method, c].mean for c in summary.columns]


def points(summary: Summary) -> list[str]:
    return [m for m in summary.multi if is_scalarization(m)]


def front(summary: Summary) -> list[str]:
    """The scalarization points no other point dominates on ``summary.columns``, in table order."""
    directions = [summary.directions[c] for c in summary.columns]
    scal = points(summary)
    return [p for p in scal if not any(dominates(means(summary, q), means(summary, p), directions) for q in scal)]


def front_dominance(summary: Summary) -> dict[str, bool]:
    """Every multi-task method (the points too: True off the front) -> whether a front point
    dominates it; empty without scalarization points."""
    directions = [summary.directions[c] for c in summary.columns]
    on_front = front(summary)
    return {m: any(dominates(means(summary, p), means(summary, m), directions) for p in on_front)
            for m in summary.multi} if on_front else {}


def with_front(summary: Summary) -> Summary:
    """``summary`` with ``front_dominates`` filled in (``foodmtl table``)."""
    return dataclasses.replace(summary, front_dominates=front_dominance(summary))


@dataclass(frozen=True)
class ParetoView:
    """What the front figure draws, for metrics ``x`` and ``y`` (display units)."""

    x: str
    y: str
    summary: Summary              # the two columns' figures over every method
    points: list[str]             # scalarization points, in table order
    front: list[str]              # the front's points, along x from its low end
    labels: dict[str, str]        # point -> its weights, e.g. "dish 1.5, ingredients 0.5"
    dominated: dict[str, bool]    # multi-task method -> a front point dominates it

    @property
    def methods(self) -> list[str]:
        """The multi-task methods that are not scalarization points."""
        return [m for m in self.summary.multi if m not in self.points]

    @property
    def baselines(self) -> dict[str, list[str]]:
        """Single-task method -> the axes (x, y) it has a value on."""
        return {m: [c for c in (self.x, self.y) if self.summary.cells[m, c].n]
                for m in self.summary.methods if is_single(m)}

    def at(self, method: str) -> tuple[Estimate, Estimate]:
        return self.summary.cells[method, self.x], self.summary.cells[method, self.y]


def pareto_view(runs: list[Run], x: str, y: str, split: str) -> ParetoView:
    """The front of ``runs``' scalarization points on metrics ``x`` and ``y`` (as ``foodmtl table
    --metrics`` names them) and every method's mean and 95 % t-interval on ``split``'s figures;
    ConfigError for a metric no run has."""
    if x == y:
        raise ConfigError(f"--pareto {x} {y}: name two different metrics")
    summary = summarize(runs_frame(runs, split), [x, y], units=runs_units(runs), split=split,
                        figures=figures_note(runs, split))
    scal, on_front = points(summary), front(summary)
    return ParetoView(x=x, y=y, summary=summary, points=scal,
                      front=sorted(on_front, key=lambda m: summary.cells[m, x].mean),
                      labels=weights_labels(scal, runs),
                      dominated=front_dominance(summary))


def weights_labels(scal: list[str], runs: list[Run]) -> dict[str, str]:
    """Each point's manual weights as its runs' config holds them, the weights that are the same at every
    point left out (``dish 1.5, ingredients 0.5``); a point without them: its name without the prefix."""
    weights = {m: ((next(r.config for r in runs if r.method == m).get("weighting") or {}).get("options") or {})
               .get("weights") or {} for m in scal}
    shared = set.intersection(*(set(w.items()) for w in weights.values())) if len(scal) > 1 else set()
    return {m: ", ".join(f"{t} {v:g}" for t, v in w.items() if (t, v) not in shared) or m[len(PREFIX):]
            for m, w in weights.items()}
