"""Runs -> paper tables: per-task metrics as mean ± std over seeds, and Δm% vs single-task.

Δm% (Maninis et al. 2019; Liu et al. 2021 convention, signed so that positive = better):

    Δm = 100/T · Σ_t (M_t − B_t) / B_t

over the T task metrics in the table, where B_t is the single-task baseline's mean for
metric t (all metrics here are higher-is-better). Single-task baselines are runs whose
config has exactly one task; their row shows their own metric only.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

METHOD_COLUMN = "method"


def load_local_runs(runs_dir: str | Path) -> pd.DataFrame:
    """One row per finished run folder under ``runs_dir`` (any depth)."""
    rows = []
    for summary_path in sorted(Path(runs_dir).rglob("summary.json")):
        config_path = summary_path.with_name("config.yaml")
        if not config_path.exists():
            continue
        config = yaml.safe_load(config_path.read_text())
        final = json.loads(summary_path.read_text()).get("final") or {}
        rows.append(run_row(config, final, str(summary_path.parent)))
    return pd.DataFrame(rows)


def run_row(config: dict, final: dict, where: str) -> dict:
    tasks = config.get("tasks", [])
    method = f"single-task ({tasks[0]})" if len(tasks) == 1 else config["weighting"]["name"]
    group = config.get("tracking", {}).get("group") or config.get("experiment")
    return {METHOD_COLUMN: method, "group": group, "seed": config["train"]["seed"],
            "tasks": ",".join(tasks), "run": where, **final}


def load_wandb_runs(path: str, group: str | None = None) -> pd.DataFrame:
    """Runs of W&B project ``ENTITY/PROJECT``; final metrics from the full history (scan_history)."""
    import wandb

    api = wandb.Api(timeout=30)
    rows = []
    for run in api.runs(path, filters={"group": group} if group else None):
        last_eval: dict = {}
        for record in run.scan_history():
            if any(k.startswith("eval/") for k in record):
                last_eval = record
        final = {k[len("eval/"):]: v for k, v in last_eval.items() if k.startswith("eval/") and v is not None}
        rows.append(run_row(dict(run.config), final, run.url))
    return pd.DataFrame(rows)


def metric_columns(runs: pd.DataFrame, metrics: list[str] | None) -> list[str]:
    if metrics:
        return metrics
    return sorted(c for c in runs.columns if "/" in c and c.split("/")[1] in ("top1", "f1_micro", "mIoU", "mAP"))


def summarize(runs: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Mean and std over seeds per method, plus Δm% where single-task baselines exist."""
    columns = metric_columns(runs, metrics)
    grouped = runs.groupby(METHOD_COLUMN)[columns]
    table = grouped.mean().join(grouped.std(ddof=1).fillna(0.0), rsuffix=" std")
    table["seeds"] = runs.groupby(METHOD_COLUMN).size()
    baselines = single_task_baselines(runs, columns)
    if baselines:
        table["Δm%"] = [delta_m(table.loc[m, list(baselines)], baselines) if not m.startswith("single-task")
                        else float("nan") for m in table.index]
    return table


def single_task_baselines(runs: pd.DataFrame, columns: list[str]) -> dict[str, float]:
    """Mean of each metric over the single-task runs of its own task."""
    out = {}
    for column in columns:
        task = column.split("/")[0]
        rows = runs[runs[METHOD_COLUMN] == f"single-task ({task})"]
        if len(rows) and rows[column].notna().any():
            out[column] = float(rows[column].mean())
    return out


def delta_m(values: pd.Series, baselines: dict[str, float]) -> float:
    terms = [(values[c] - b) / b for c, b in baselines.items() if b != 0]
    return 100.0 * sum(terms) / len(terms)


def render(table: pd.DataFrame, fmt: str = "markdown") -> str:
    """Cells ``mean ± std``; the best multi-task value of each column in bold."""
    if fmt == "csv":
        return table.to_csv(float_format="%.4f")
    means = [c for c in table.columns if not c.endswith(" std") and c != "seeds"]
    multi = [m for m in table.index if not m.startswith("single-task")]
    cells = pd.DataFrame(index=table.index)
    for column in means:
        best = table.loc[multi, column].max() if multi else None
        cells[column] = [cell(table, m, column, bold=(m in multi and table.loc[m, column] == best), fmt=fmt)
                         for m in table.index]
    cells["seeds"] = table["seeds"]
    if fmt == "latex":
        return cells.rename(columns={"Δm%": "$\\Delta_m$ (\\%)"}).to_latex(escape=False)
    return markdown(cells)


def markdown(frame: pd.DataFrame) -> str:
    header = [frame.index.name or METHOD_COLUMN, *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():
        lines.append("| " + " | ".join([str(index), *map(str, row.tolist())]) + " |")
    return "\n".join(lines)


def cell(table: pd.DataFrame, method: str, column: str, bold: bool, fmt: str) -> str:
    value = table.loc[method, column]
    if pd.isna(value):
        return "–"
    std = table.loc[method, f"{column} std"] if f"{column} std" in table else None
    scale = 1.0 if column == "Δm%" else 100.0  # metrics shown in percent
    pm = " $\\pm$ " if fmt == "latex" else " ± "
    text = f"{value * scale:.2f}" + (f"{pm}{std * scale:.2f}" if std is not None and not pd.isna(std) else "")
    if not bold:
        return text
    return f"\\textbf{{{text}}}" if fmt == "latex" else f"**{text}**"
