"""Curves of a group of runs: task-weight trajectories per strategy, validation metrics per task.

Curves are means over the seeds of a method. Figures are drawn with matplotlib's object API
(no pyplot state), so any number can be made in one process without a display.

Readability rules: equal weights draw as a thick line under thinner dashed ones, each task with
its own marker at its own positions, and a note names the tasks whose curves coincide; all
weight panels share one y-scale; steps and epochs get integer ticks; the caption says what a
"weight" is for every method; validation metrics are labelled with name, unit and, for
lower-is-better metrics, the direction (``foodmtl.tasks.metric_direction``), the best final
multi-task mean is starred in that direction, and the seed spread is shown as dodged error bars
at the last epoch instead of overlapping bands (only the single-task baseline keeps its band).
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from foodmtl.errors import ConfigError
from foodmtl.analysis.runs import Run
from foodmtl.analysis.tables import PRIMARY, SINGLE, is_single, runs_units
from foodmtl.tasks import metric_direction, metric_is_fraction, metric_unit

PANEL_INCHES = (4.2, 3.2)
LINESTYLES = ("-", (0, (5, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MARKS_PER_LINE = 6
DODGE = 0.06  # epochs between the seed-spread bars of neighbouring methods
METRIC_NAMES = {"top1": "top-1 accuracy", "top3": "top-3 accuracy", "top5": "top-5 accuracy",
                "f1_macro": "macro-F1", "f1_micro": "micro-F1", "mAP": "mAP", "mIoU": "mIoU",
                "mDice": "mean Dice", "pixel_acc": "pixel accuracy", "mae": "MAE", "mae_pct": "MAE"}
OWN_UNITS = {"mae_pct": "% of the mean"}  # where the bare unit says too little
SYMLOG_ABOVE = 10  # a weight above this puts the shared y-axis on a symlog scale
WEIGHT_CAPTION = (
    "Task weight w_t per step (mean over seeds, rolling mean over {smooth} steps): the factor of task t's loss "
    "gradient in the shared parameters' gradient Σ_t w_t ∇L_t.\nLoss-level methods: the loss weight "
    "(FAMO, uncertainty: its derivative d loss / d L_t). Gradient-level methods (PCGrad, CAGrad, MGDA, "
    "IMTL-G, Nash-MTL): the coefficient c_t they compute from the per-task gradients.")
VALIDATION_CAPTION = ("Lines: mean over seeds per epoch. Bars right of the last epoch: ±1 std over seeds, one per "
                      "method. Band: single-task ±1 std. ★: best final multi-task mean.")


def history(run: Run, prefix: str) -> pd.DataFrame:
    """The run's records with keys starting with ``prefix``: those columns plus step and epoch."""
    rows = [r for r in run.history if any(k.startswith(prefix) for k in r)]
    frame = pd.DataFrame(rows)
    return frame[[c for c in frame.columns if c.startswith(prefix) or c in ("step", "epoch")]]


def seed_mean(frames: list[pd.DataFrame], index: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and std over runs (seeds) at each value of ``index``."""
    grouped = pd.concat(frames).groupby(index)
    return grouped.mean(), grouped.std(ddof=1)


def by_method(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs per method, in table order: multi-task methods, then single-task baselines, each A-Z."""
    out: dict[str, list[Run]] = {}
    for run in runs:
        out.setdefault(run.method, []).append(run)
    return {m: out[m] for m in sorted(out, key=lambda m: (is_single(m), m))}


def panels(count: int, columns: int = 3, sharey: bool = False) -> tuple[Figure, list]:
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    fig = Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + 1.2), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, sharey=sharey).ravel().tolist()
    for ax in axes[count:]:
        ax.set_visible(False)
    for ax in axes[:count]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if sharey:
            ax.yaxis.set_tick_params(labelleft=True)
    return fig, axes[:count]


def weights_figure(runs: list[Run], smooth: int = 20) -> Figure:
    """One panel per multi-task method: each task's weight against the step, as a rolling mean
    over ``smooth`` steps (RLW and the gradient-level weights change every step)."""
    methods = {m: rs for m, rs in by_method(runs).items() if not is_single(m)}
    if not methods:
        raise ConfigError("no multi-task run to plot task weights of")
    tasks = list(dict.fromkeys(k.split("/", 1)[1] for r in runs for rec in r.history for k in rec
                               if k.startswith("weight/")))
    fig, axes = panels(len(methods), sharey=True)
    for ax, (method, group) in zip(axes, methods.items()):
        mean, _ = seed_mean([history(r, "weight/").drop(columns="epoch", errors="ignore") for r in group], "step")
        curves = {c.split("/", 1)[1]: mean[c].rolling(smooth, min_periods=1).mean() for c in mean.columns}
        for task, curve in curves.items():
            draw_weight(ax, task, curve, tasks.index(task), len(tasks))
        title = f"{method} ({len(group)} seed{'s' * (len(group) > 1)})"
        ax.set_title("\n".join([title, *coinciding(curves)]), fontsize=10)
        ax.set(xlabel="step", ylabel="task weight")
    text = WEIGHT_CAPTION.format(smooth=smooth)
    if max(ax.dataLim.y1 for ax in axes) > SYMLOG_ABOVE:  # e.g. Nash-MTL's weights: a linear scale flattens the rest
        axes[0].set_yscale("symlog", linthresh=1)       # shared: every panel
        text += " y: linear from 0 to 1, logarithmic above."
    caption(fig, text)
    legend_by_label(fig, axes)
    return fig


def draw_weight(ax, task: str, curve: pd.Series, i: int, count: int) -> None:
    """Task ``i`` of ``count``: earlier tasks wider underneath, so equal curves all stay visible,
    with its own dash pattern and marker, the markers shifted by i/count of their spacing."""
    every = max(1, len(curve) // MARKS_PER_LINE)
    ax.plot(curve.index, curve.values, color=f"C{i}", linestyle=LINESTYLES[i % len(LINESTYLES)],
            linewidth=1.2 + 2.4 * (count - 1 - i) / max(1, count - 1), marker=MARKERS[i % len(MARKERS)],
            markersize=5, markevery=(i * every // count, every), label=task, zorder=2 + i)


def coinciding(curves: dict[str, pd.Series]) -> list[str]:
    """``a = b = c`` for each group of tasks whose curves are equal (drawn on top of each other)."""
    groups: list[list[str]] = []
    for task, curve in curves.items():
        group = next((g for g in groups
                      if np.allclose(curves[g[0]], curve, rtol=1e-6, atol=1e-9, equal_nan=True)), None)
        if group is None:
            groups.append([task])
        else:
            group.append(task)
    return ["equal: " + " = ".join(g) for g in groups if len(g) > 1]


def caption(fig: Figure, text: str) -> None:
    """``text`` above the panels, wrapped to the figure's width."""
    width = int(fig.get_figwidth() * 15)
    fig.suptitle("\n".join(textwrap.fill(part, width) for part in text.split("\n")), fontsize=8.5)


def plot_weights(runs: list[Run], path: str | Path, smooth: int = 20) -> Path:
    return save(weights_figure(runs, smooth), path)


def validation_metrics(runs: list[Run]) -> list[str]:
    """``eval/<task>/<metric>`` keys of the table's default metrics that the runs logged."""
    return sorted({k for r in runs for rec in r.history for k in rec
                   if k.startswith("eval/") and k.rsplit("/", 1)[1] in PRIMARY})


def metric_scale(key: str) -> float:
    """100 for metrics that are fractions (shown in %, as ``foodmtl table``), 1 for own units."""
    return 100.0 if metric_is_fraction(key) else 1.0


def metric_label(key: str, units: dict[str, str]) -> str:
    """``top-1 accuracy (%)``, ``MAE (g) — lower is better`` (``units``: task -> unit, as the runs
    recorded it; ``own units`` where they recorded none)."""
    metric = key.rsplit("/", 1)[1]
    name = METRIC_NAMES.get(metric, metric)
    shown = OWN_UNITS.get(metric) or metric_unit(key, units) or "own units"
    return f"{name} ({shown})" + (" — lower is better" if metric_direction(key) == "min" else "")


def validation_figure(runs: list[Run]) -> Figure:
    """One panel per task metric: each method's mean over seeds against the epoch, its seed spread
    at the last epoch; the task's single-task baseline dashed black with its ±std band."""
    metrics = validation_metrics(runs)
    if not metrics:
        raise ConfigError("the runs have no evaluation records of the default metrics to plot")
    methods, units = by_method(runs), runs_units(runs)
    fig, axes = panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        finals = {}
        for i, (method, group) in enumerate(methods.items()):
            frames = [history(r, metric) for r in group if any(metric in rec for rec in r.history)]
            if frames:
                mean, std = seed_mean([f[["epoch", metric]].dropna() for f in frames], "epoch")
                scale = metric_scale(metric)
                finals[method] = draw_method(ax, method, i, mean[metric] * scale, std[metric].fillna(0) * scale)
        star_best(ax, {m: v for m, v in finals.items() if not is_single(m)}, metric_direction(metric))
        task, name = metric[len("eval/"):].rsplit("/", 1)
        ax.set(title=f"{task}: {METRIC_NAMES.get(name, name)}", xlabel="epoch", ylabel=metric_label(metric, units))
    caption(fig, VALIDATION_CAPTION)
    legend_by_label(fig, axes)
    return fig


def draw_method(ax, method: str, i: int, mean: pd.Series, std: pd.Series) -> tuple[float, float]:
    """Method ``i``'s mean curve (epochs from 1); returns its last (epoch, mean)."""
    epochs = mean.index + 1
    if is_single(method):
        ax.plot(epochs, mean, "--", color="black", label=SINGLE, marker=".", zorder=3)
        ax.fill_between(epochs, mean - std, mean + std, color="black", alpha=0.1, linewidth=0)
    else:
        colour, marker = f"C{i % 10}", MARKERS[i % len(MARKERS)]
        ax.plot(epochs, mean, color=colour, marker=marker, markersize=4, label=method, zorder=4)
        ax.errorbar(epochs[-1] + DODGE * (i + 1), mean.iloc[-1], yerr=std.iloc[-1], color=colour, marker=marker,
                    markersize=3, capsize=2, linewidth=1, zorder=4)
    return float(epochs[-1]), float(mean.iloc[-1])


def star_best(ax, finals: dict[str, tuple[float, float]], direction: str) -> None:
    """A star on the best final mean (the maximum, or the minimum for lower-is-better metrics)."""
    if not finals:
        return
    pick = max if direction == "max" else min
    best = pick(finals, key=lambda m: finals[m][1])
    epoch, value = finals[best]
    ax.plot(epoch, value, marker="*", markersize=14, color="gold", markeredgecolor="black", linestyle="none",
            zorder=5, label="best final multi-task mean")
    ax.annotate(f"{best} {value:.4g}", (epoch, value), textcoords="offset points",
                xytext=(-6, 8 if direction == "max" else -14), ha="right", fontsize=7)


def plot_validation(runs: list[Run], path: str | Path) -> Path:
    return save(validation_figure(runs), path)


def legend_by_label(fig: Figure, axes: list) -> None:
    """One legend for the figure, each label once."""
    entries: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    fig.legend(entries.values(), entries.keys(), loc="outside lower center", ncols=min(len(entries), 6))


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
