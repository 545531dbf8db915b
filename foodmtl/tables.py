"""Runs -> paper tables: per-task metrics as mean ± std over seeds, and Δm% vs single-task.

Δm% (Maninis et al. 2019; Liu et al. 2021 convention, signed so that positive = better):

    Δm = 100/T · Σ_t (M_t − B_t) / B_t

over the T task metrics in the table, where M_t is the method's mean over seeds and B_t the
mean of the single-task baselines of metric t's task (all metrics here are higher-is-better).
Single-task baselines are runs whose config has exactly one task; their row shows their own
task's metrics only. The best multi-task value of each column is marked.
"""
from __future__ import annotations

import pandas as pd

from foodmtl.registry import unknown_name_error
from foodmtl.runs import Run

METHOD = "method"
DELTA = "Δm%"
SINGLE = "single-task"
PRIMARY = ("top1", "f1_micro", "mAP", "mIoU")  # metric names that make the table's columns


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: method, seed, run name, then its final metrics."""
    return pd.DataFrame([{METHOD: r.method, "seed": r.seed, "run": r.name, **r.final} for r in runs])


def metric_columns(frame: pd.DataFrame, metrics: list[str] | None = None) -> list[str]:
    if metrics:
        for name in metrics:
            if name not in frame.columns:
                raise unknown_name_error("metric", name, [c for c in frame.columns if "/" in c])
        return metrics
    return sorted(c for c in frame.columns if "/" in c and c.split("/", 1)[1] in PRIMARY)


def summarize(frame: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Per method: mean and sample std (``<metric> std``) over seeds, seed count, and Δm%
    where single-task baselines exist. Multi-task methods first, then the baselines, each A-Z."""
    columns = metric_columns(frame, metrics)
    grouped = frame.groupby(METHOD)
    table = grouped[columns].mean().join(grouped[columns].std(ddof=1).add_suffix(" std"))
    table["seeds"] = grouped.size()
    table = table[table[columns].notna().any(axis=1)]  # e.g. baselines of tasks left out by ``metrics``
    baselines = single_task_baselines(table, columns)
    if baselines:
        table[DELTA] = [float("nan") if is_single(m) else delta_m(table.loc[m], baselines) for m in table.index]
    return table.loc[sorted(table.index, key=lambda m: (is_single(m), m))]


def is_single(method: str) -> bool:
    return method.startswith(SINGLE)


def single_task_baselines(table: pd.DataFrame, columns: list[str]) -> dict[str, float]:
    """Metric -> mean of the single-task runs of its own task."""
    out = {}
    for column in columns:
        method = f"{SINGLE} ({column.split('/')[0]})"
        if method in table.index and pd.notna(table.loc[method, column]):
            out[column] = float(table.loc[method, column])
    return out


def delta_m(means: pd.Series, baselines: dict[str, float]) -> float:
    """NaN when the method lacks one of the baselines' metrics (a different task set)."""
    terms = [(means[c] - b) / b for c, b in baselines.items() if b != 0]
    return 100.0 * sum(terms) / len(terms) if terms else float("nan")


def render(table: pd.DataFrame, fmt: str = "markdown") -> str:
    """``csv``: the raw numbers; ``markdown``/``latex``: cells ``mean ± std`` in percent,
    the best multi-task value of each column in bold."""
    if fmt == "csv":
        return table.to_csv(float_format="%.6g")
    means = [c for c in table.columns if not c.endswith(" std") and c != "seeds"]
    multi = [m for m in table.index if not is_single(m)]
    cells = pd.DataFrame(index=table.index)
    for column in means:
        best = table.loc[multi, column].max() if multi else None
        cells[column] = [cell(table, m, column, m in multi and table.loc[m, column] == best, fmt) for m in table.index]
    cells["seeds"] = table["seeds"].astype(str)
    return latex(cells) if fmt == "latex" else markdown(cells)


def cell(table: pd.DataFrame, method: str, column: str, bold: bool, fmt: str) -> str:
    value = table.loc[method, column]
    if pd.isna(value):
        return "–"
    scale = 1.0 if column == DELTA else 100.0  # metrics are fractions, shown in percent
    text = f"{value * scale:+.2f}" if column == DELTA else f"{value * scale:.2f}"
    std = table.loc[method, f"{column} std"] if f"{column} std" in table.columns else float("nan")
    if pd.notna(std):
        text += (" $\\pm$ " if fmt == "latex" else " ± ") + f"{std * scale:.2f}"
    if bold:
        return f"\\textbf{{{text}}}" if fmt == "latex" else f"**{text}**"
    return text


def markdown(cells: pd.DataFrame) -> str:
    header = [METHOD, *cells.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([str(method), *row]) + " |" for method, row in zip(cells.index, cells.values.tolist())]
    return "\n".join(lines) + "\n"


def latex(cells: pd.DataFrame) -> str:
    """A booktabs tabular."""
    header = [METHOD, *(("$\\Delta_m$ (\\%)" if c == DELTA else tex_escape(c)) for c in cells.columns)]
    rows = [" & ".join([tex_escape(str(m)), *row]) + " \\\\" for m, row in zip(cells.index, cells.values.tolist())]
    return "\n".join(["\\begin{tabular}{l" + "c" * len(cells.columns) + "}", "\\toprule",
                      " & ".join(header) + " \\\\", "\\midrule", *rows, "\\bottomrule", "\\end{tabular}"]) + "\n"


def tex_escape(text: str) -> str:
    for char in "&%$#_{}":
        text = text.replace(char, "\\" + char)
    return text
