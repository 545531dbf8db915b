"""Gradient diagnostics of a group of runs (``foodmtl plot``): per pair of tasks, the cosine of their
gradients over the steps and the conflict rate per evaluation, one line per method (mean over seeds).

Reads the ``diag/cos/<a>|<b>`` and ``diag/conflict/<a>|<b>`` records that engine/diagnostics.py writes
every ``train.grad_diagnostics_every`` steps and at each evaluation (``diag/shared/...``: on the
backbone's parameters, with ``train.grad_diagnostics_shared``). Drawn with matplotlib's object API.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from foodmtl.analysis.curves import MARKERS, by_method, caption, history, legend_by_label, panels, save, seed_mean
from foodmtl.analysis.runs import Run
from foodmtl.errors import ConfigError

SPACES = {"diag/": "the shared representation", "diag/shared/": "the backbone's parameters"}
CAPTION = ("Cosine of two tasks' gradients on {spaces} (engine/diagnostics.py), mean over seeds, rolling mean over "
           "{smooth} diagnosed steps: below 0 the tasks pull the shared weights apart. Conflict rate: share of the "
           "steps diagnosed since the previous evaluation with a negative cosine, mean over seeds.")


def pairs(runs: list[Run], prefix: str) -> list[str]:
    """``a|b`` of every pair with a ``<prefix>cos/a|b`` record, sorted."""
    return sorted({k[len(prefix) + 4:] for r in runs for rec in r.history for k in rec if k.startswith(prefix + "cos/")})


def has_diagnostics(runs: list[Run]) -> bool:
    return any(pairs(runs, prefix) for prefix in SPACES)


def diagnostics_figure(runs: list[Run], smooth: int = 20) -> Figure:
    """Cosine panels (x: step) then conflict-rate panels (x: epoch), per space and pair of tasks."""
    spaces = {prefix: pairs(runs, prefix) for prefix in SPACES if pairs(runs, prefix)}
    if not spaces:
        raise ConfigError("the runs have no gradient diagnostics (train.grad_diagnostics_every > 0 logs them)")
    specs = [(kind, prefix, pair) for prefix, names in spaces.items() for kind in ("cos", "conflict") for pair in names]
    fig, axes = panels(len(specs))
    methods = by_method(runs)
    for ax, (kind, prefix, pair) in zip(axes, specs):
        key = f"{prefix}{kind}/{pair}"
        for i, (method, group) in enumerate(methods.items()):
            frames = [history(r, key) for r in group if any(key in rec for rec in r.history)]
            if frames:
                draw(ax, kind, method, i, [f.dropna(subset=[key]) for f in frames], key, smooth)
        where = "" if prefix == "diag/" else " (backbone parameters)"
        if kind == "cos":
            ax.axhline(0.0, color="black", linewidth=0.8, zorder=1)
            ax.set(title=f"{pair}: gradient cosine{where}", xlabel="step", ylabel="cosine")
        else:
            ax.set(title=f"{pair}: conflict rate{where}", xlabel="epoch", ylabel="steps with cosine < 0 (%)",
                   ylim=(-5, 105))
    caption(fig, CAPTION.format(spaces=" and ".join(SPACES[p] for p in spaces), smooth=smooth))
    legend_by_label(fig, axes)
    return fig


def draw(ax, kind: str, method: str, i: int, frames: list[pd.DataFrame], key: str, smooth: int) -> None:
    """Method ``i``'s mean over seeds: the cosine by step (rolling mean), or the conflict rate in % by epoch."""
    style = dict(color=f"C{i % 10}", marker=MARKERS[i % len(MARKERS)], label=method)
    if kind == "cos":
        mean, _ = seed_mean([f[["step", key]] for f in frames], "step")
        curve = mean[key].rolling(smooth, min_periods=1).mean()
        ax.plot(curve.index, curve.values, markersize=3, markevery=max(1, len(curve) // 6), **style)
    else:
        mean, _ = seed_mean([f[["epoch", key]] for f in frames], "epoch")
        ax.plot(mean.index + 1, 100 * mean[key], markersize=4, **style)


def plot_diagnostics(runs: list[Run], path: str | Path, smooth: int = 20) -> Path:
    return save(diagnostics_figure(runs, smooth), path)
