"""A W&B run read back as W&B wrote it, with W&B's own reader (``wandb leet inspect --json``)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

WANDB = Path(sys.executable).with_name("wandb")


def records(run_file: Path) -> list[dict]:
    out = subprocess.run([str(WANDB), "leet", "inspect", "--json", str(run_file)], capture_output=True,
                         text=True, timeout=300, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def segments(run_dir: Path) -> list[Path]:
    """The run's .wandb files, oldest first (one per process that logged to it)."""
    return sorted((run_dir / "wandb").glob("*run-*/run-*.wandb"), key=lambda p: p.parent.name)


def history(run_file: Path) -> list[dict]:
    """Logged rows without W&B's own keys (_step, _runtime, _timestamp)."""
    return [{k: v for k, v in r["history"]["item"].items() if not k.startswith("_")}
            for r in records(run_file) if r["type"] == "history"]


def exit_code(run_file: Path) -> int | None:
    return next((r["exit"].get("exit_code", 0) for r in records(run_file) if r["type"] == "exit"), None)


def same_record(logged: dict, jsonl: dict) -> bool:
    """metrics.jsonl writes NaN as null; W&B keeps NaN."""
    def same(a, b):
        return a == b or _nan(a) and _nan(b)
    return logged.keys() == jsonl.keys() and all(same(logged[k], jsonl[k]) for k in jsonl)


def _nan(value) -> bool:
    return value is None or value == "NaN" or isinstance(value, float) and math.isnan(value)
