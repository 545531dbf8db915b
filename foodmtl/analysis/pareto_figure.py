"""The front figure of ``foodmtl plot --pareto X Y``: a ``ParetoView`` drawn with matplotlib's
object API (no pyplot state).

The scalarization points at their means, the front's points joined along x and labelled with
their weights (the lines only guide the eye: ``foodmtl.analysis.pareto`` says why no model lies on
them), the other points hollow; each other multi-task method at its mean with its 95 %
t-intervals on both axes, "(dominated)" in the legend where a front point dominates it; each
single-task baseline as a dashed line at its mean on the axis it has a value on. Axes are labelled
as the validation curves are (name, unit, direction), and an arrow beside the axes points where
both metrics are better.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

from matplotlib.figure import Figure

from foodmtl.analysis.curves import MARKERS, metric_label, save
from foodmtl.analysis.pareto import ParetoView
from foodmtl.analysis.seed_stats import Estimate

CAPTION = ("Scalarization front: models trained with fixed manual weights (labels), mean over seeds; the "
           "non-dominated ones joined (the line only guides the eye: no model lies between the points). "
           "Methods: mean with 95 % t-intervals over seeds on both axes. (dominated): a front point is at least "
           "as good on both axes and better on one.")
NO_POINTS = "No scalarization runs (sweep key scalarization): no front, the methods only."


def pareto_figure(view: ParetoView) -> Figure:
    fig = Figure(figsize=(8.5, 5.6), layout="constrained")
    ax = fig.add_subplot()
    draw_points(ax, view)
    for i, method in enumerate(view.methods):
        draw_method(ax, view, method, i)
    for i, (method, axes) in enumerate(view.baselines.items()):
        draw_baseline(ax, view, method, axes, first=i == 0)
    units = view.summary.units
    ax.set_xlabel(axis_label(view.x, units))
    ax.set_ylabel(axis_label(view.y, units))
    better_arrow(ax, view.summary.directions[view.x], view.summary.directions[view.y])
    text = " ".join([CAPTION if view.points else NO_POINTS, view.summary.figures])
    fig.suptitle(textwrap.fill(text, int(fig.get_figwidth() * 15)), fontsize=8.5)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=7.5, frameon=False)
    return fig


def axis_label(column: str, units: dict[str, str]) -> str:
    """``dish: top-1 accuracy (%)``; ``units``: the summary's display unit per column, which for a
    metric in its task's own unit is that unit (``metric_label`` asks task -> unit)."""
    task = column.split("/", 1)[0]
    return f"{task}: {metric_label(column, {task: units.get(column, '')})}"


def draw_points(ax, view: ParetoView) -> None:
    if not view.points:
        return
    xy = {m: tuple(e.mean for e in view.at(m)) for m in view.points}
    off = [m for m in view.points if m not in view.front]
    ax.plot([xy[m][0] for m in view.front], [xy[m][1] for m in view.front], "-o", color="black", markersize=6,
            linewidth=1.2, label="scalarization front", zorder=3)
    if off:
        ax.plot([xy[m][0] for m in off], [xy[m][1] for m in off], "o", color="grey", markerfacecolor="none",
                label="scalarization, dominated", zorder=3)
    for method in view.points:
        ax.annotate(view.labels[method], xy[method], textcoords="offset points", xytext=(5, 4), fontsize=6.5,
                    color="black" if method in view.front else "grey")


def draw_method(ax, view: ParetoView, method: str, i: int) -> None:
    x, y = view.at(method)
    label = method + (" (dominated)" if view.dominated.get(method) else "")
    ax.errorbar(x.mean, y.mean, xerr=half_widths(x), yerr=half_widths(y), color=f"C{i % 10}",
                marker=MARKERS[i % len(MARKERS)], markersize=6, capsize=3, linewidth=1, linestyle="none",
                label=label, zorder=4)


def half_widths(est: Estimate) -> list[list[float]] | None:
    """[[below], [above]] the mean for ``errorbar``; None where one seed gives no interval."""
    return None if math.isnan(est.low) else [[est.mean - est.low], [est.high - est.mean]]


def draw_baseline(ax, view: ParetoView, method: str, axes: list[str], first: bool) -> None:
    """A dashed line at the baseline's mean on each axis it has a value on, named at its end."""
    for column in axes:
        mean = view.summary.cells[method, column].mean
        label = "single-task baseline" if first else None
        first = False
        if column == view.x:
            ax.axvline(mean, color="black", linestyle="--", linewidth=0.9, label=label, zorder=2)
            ax.annotate(method, (mean, 1), xycoords=("data", "axes fraction"), xytext=(-2, -3),
                        textcoords="offset points", rotation=90, ha="right", va="top", fontsize=6.5)
        else:
            ax.axhline(mean, color="black", linestyle="--", linewidth=0.9, label=label, zorder=2)
            ax.annotate(method, (1, mean), xycoords=("axes fraction", "data"), xytext=(-3, 2),
                        textcoords="offset points", ha="right", va="bottom", fontsize=6.5)


def better_arrow(ax, x_direction: str, y_direction: str) -> None:
    """An arrow right of the axes, below the legend, towards where both metrics are better."""
    dx = 1 if x_direction == "max" else -1
    dy = 1 if y_direction == "max" else -1
    centre = (1.14, 0.12)
    ax.annotate("better", xy=(centre[0] + 0.05 * dx, centre[1] + 0.07 * dy),
                xytext=(centre[0] - 0.05 * dx, centre[1] - 0.07 * dy), xycoords="axes fraction",
                textcoords="axes fraction", ha="center", va="center", fontsize=8,
                arrowprops={"arrowstyle": "->", "color": "dimgrey"})


def plot_pareto(view: ParetoView, path: str | Path) -> Path:
    return save(pareto_figure(view), path)
