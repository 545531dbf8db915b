"""Curves of a group of runs: task-weight trajectories per strategy, validation metrics per task.

Curves are means over the seeds of a method. Figures are drawn with matplotlib's object API
(no pyplot state), so any number can be made in one process without a display.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from foodmtl.runs import Run
from foodmtl.tables import PRIMARY, SINGLE, is_single

PANEL_INCHES = (4.0, 3.0)


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


def panels(count: int, columns: int = 3) -> tuple[Figure, list]:
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    fig = Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel().tolist()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def plot_weights(runs: list[Run], path: str | Path, smooth: int = 20) -> Path:
    """One panel per multi-task method: each task's loss weight against the step, as a rolling
    mean over ``smooth`` steps (RLW and the gradient-level weights change every step)."""
    methods = {m: rs for m, rs in by_method(runs).items() if not is_single(m)}
    if not methods:
        raise ValueError("no multi-task run to plot task weights of")
    tasks = sorted({k.split("/", 1)[1] for r in runs for rec in r.history for k in rec if k.startswith("weight/")})
    fig, axes = panels(len(methods))
    for ax, (method, group) in zip(axes, methods.items()):
        mean, _ = seed_mean([history(r, "weight/").drop(columns="epoch", errors="ignore") for r in group], "step")
        for column in mean.columns:
            task = column.split("/", 1)[1]
            ax.plot(mean.index, mean[column].rolling(smooth, min_periods=1).mean(),
                    color=f"C{tasks.index(task)}", label=task)
        ax.set(title=f"{method} (n={len(group)})", xlabel="step", ylabel="task weight")
    legend_by_label(fig, axes)
    return save(fig, path)


def plot_validation(runs: list[Run], path: str | Path) -> Path:
    """One panel per task metric: each method's mean ± std over seeds against the epoch;
    the task's single-task baseline dashed black."""
    metrics = sorted({k for r in runs for rec in r.history for k in rec
                      if k.startswith("eval/") and k.rsplit("/", 1)[1] in PRIMARY})
    if not metrics:
        raise ValueError("no evaluation records to plot")
    methods = by_method(runs)
    fig, axes = panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        for i, (method, group) in enumerate(methods.items()):
            frames = [history(r, metric) for r in group if any(metric in rec for rec in r.history)]
            if not frames:
                continue
            mean, std = seed_mean([f[["epoch", metric]].dropna() for f in frames], "epoch")
            epochs, value, spread = mean.index + 1, mean[metric] * 100, std[metric].fillna(0) * 100
            color, label = ("black", SINGLE) if is_single(method) else (f"C{i}", method)
            ax.plot(epochs, value, "--" if is_single(method) else "-", color=color, label=label, marker=".")
            ax.fill_between(epochs, value - spread, value + spread, color=color, alpha=0.12)
        ax.set(title=metric[len("eval/"):], xlabel="epoch", ylabel="%")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_by_label(fig, axes)
    return save(fig, path)


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
