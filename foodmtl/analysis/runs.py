"""Finished runs, read back from local run folders or from W&B, for tables and plots."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from foodmtl.errors import ConfigError
from foodmtl.tracking.local import read_jsonl

WANDB_PREFIX = "wandb:"
TEST, EVAL = "test", "eval"


@dataclass
class Run:
    name: str
    method: str                  # sweep method, "single-task (<task>)", or the weighting name
    group: str                   # tracking.group, else the experiment (as W&B groups it)
    seed: int
    config: dict[str, Any]       # the resolved config
    final: dict[str, float]      # last evaluation on data.eval_split, e.g. {"dish/top1": 0.81}
    history: list[dict[str, Any]]  # metrics.jsonl records (step, train/..., weight/..., eval/...)
    where: str                   # run folder or W&B URL
    units: dict[str, str] = field(default_factory=dict)  # task -> unit of its values (summary's "units")
    test: dict[str, float] = field(default_factory=dict)  # best.pt on data.test_split, scored once at the end

    def figures(self, split: str) -> dict[str, float]:
        """The run's figures on ``split``: ``test`` (the selected model on the test split) or ``eval``
        (its last evaluation on ``data.eval_split``, the split model selection read)."""
        return self.test if split == TEST else self.final


def load_group(source: str, group: str | None = None) -> list[Run]:
    """The finished runs of ``group``, or of the only group in ``source`` when None."""
    runs = load_runs(source, group)
    if not runs:
        raise FileNotFoundError(f"no finished run in {source}" + (f" of group {group}" if group else ""))
    groups = sorted({r.group for r in runs})
    if len(groups) > 1:
        raise ConfigError(f"{source} holds runs of groups {', '.join(groups)}; choose one with --group")
    return runs


def load_runs(source: str, group: str | None = None) -> list[Run]:
    """``source``: a folder searched for run folders at any depth, or ``wandb:ENTITY/PROJECT``."""
    if source.startswith(WANDB_PREFIX):
        return wandb_runs(source[len(WANDB_PREFIX):], group)
    if not Path(source).is_dir():
        raise FileNotFoundError(f"runs folder not found: {source}")
    return local_runs(Path(source), group)


def local_runs(root: Path, group: str | None = None) -> list[Run]:
    """Run folders holding a summary.json (finished runs), in path order."""
    runs = []
    for summary_path in sorted(root.rglob("summary.json")):
        folder = summary_path.parent
        if not (folder / "config.yaml").is_file():
            continue
        config = yaml.safe_load((folder / "config.yaml").read_text())
        summary = json.loads(summary_path.read_text())
        history = read_jsonl(folder / "metrics.jsonl") if (folder / "metrics.jsonl").is_file() else []
        runs.append(make_run(config, summary.get("final") or {}, history, str(folder), summary.get("units") or {},
                             summary.get("test") or {}))
    return [r for r in runs if group is None or r.group == group]


def wandb_runs(path: str, group: str | None = None) -> list[Run]:
    """Finished runs of W&B project ``ENTITY/PROJECT``; final metrics = the last eval record."""
    import wandb

    filters = {"state": "finished", **({"group": group} if group else {})}
    runs = []
    for run in wandb.Api(timeout=30).runs(path, filters=filters):
        history = [{k: v for k, v in row.items() if v is not None} for row in run.scan_history()]
        evals = [row for row in history if any(k.startswith("eval/") for k in row)]
        final = {k[len("eval/"):]: v for k, v in (evals[-1] if evals else {}).items() if k.startswith("eval/")}
        summary = run.summary  # what the trainer's summary sent, as in summary.json
        runs.append(make_run(dict(run.config), final, history, run.url, dict(summary.get("units") or {}),
                             dict(summary.get("test") or {})))
    return runs


def make_run(config: dict[str, Any], final: dict[str, float], history: list[dict], where: str,
             units: dict[str, str] | None = None, test: dict[str, float] | None = None) -> Run:
    tracking = config.get("tracking") or {}
    return Run(name=str(config.get("run")), method=method_name(config),
               group=tracking.get("group") or config.get("experiment"), seed=int(config["train"]["seed"]),
               config=config, final=final, history=history, where=where, units=dict(units or {}),
               test=dict(test or {}))


def method_name(config: dict[str, Any]) -> str:
    """Single-task runs: ``single-task (<task>)``; sweep runs ``<method>-s<seed>``: ``<method>``;
    any other run: its weighting strategy."""
    tasks = config.get("tasks") or []
    if len(tasks) == 1:
        return f"single-task ({tasks[0]})"
    stem, sep, seed = str(config.get("run")).rpartition("-s")
    return stem if sep and stem and seed == str(config["train"]["seed"]) else config["weighting"]["name"]
