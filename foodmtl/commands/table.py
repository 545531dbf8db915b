"""``foodmtl table RUNS_DIR|wandb:ENTITY/PROJECT``: per-task mean ± std over seeds, and Δm%."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("table", help="paper table of finished runs: mean ± std over seeds, Δm%% vs single-task")
    p.add_argument("source", help="folder of run folders (e.g. runs/synthfood-ablation) or wandb:ENTITY/PROJECT")
    p.add_argument("--group", help="only runs of this group (tracking.group, else the experiment)")
    p.add_argument("--format", choices=["markdown", "latex", "csv"], default="markdown")
    p.add_argument("--metrics", nargs="+", help="columns, e.g. dish/top1 ingredients/mAP (default: the main "
                                                "metric(s) of every task)")
    p.add_argument("--out", help="also write the table to this file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from foodmtl.runs import load_group
    from foodmtl.tables import render, runs_frame, summarize

    runs = load_group(args.source, args.group)
    text = render(summarize(runs_frame(runs), args.metrics), args.format)
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0
