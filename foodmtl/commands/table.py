"""``foodmtl table RUNS_DIR|wandb:ENTITY/PROJECT``: per metric mean ± std and 95 % interval over
seeds, Δm% vs single-task, mean rank, and paired differences to a reference method."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    from foodmtl.commands import add_command

    p = add_command(sub, "table", "paper table of finished runs: mean ± std [95%% CI] over seeds, Δm%% vs "
                                  "single-task, mean rank, paired differences to a reference method",
                    "foodmtl table runs/synthfood-ablation --format latex --out table.tex")
    p.add_argument("source", help="folder of run folders (e.g. runs/synthfood-ablation) or wandb:ENTITY/PROJECT")
    p.add_argument("--group", help="only runs of this group (tracking.group, else the experiment)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="only runs whose config has this value, e.g. model.backbone=resnet50; repeatable (runs "
                        "that differ in data, backbone, tasks or budget are refused together)")
    p.add_argument("--format", choices=["markdown", "latex", "csv"], default="markdown",
                   help="csv: one row per method and column; every format in the same units (0-1 metrics in %%)")
    p.add_argument("--metrics", nargs="+", help="columns, e.g. dish/top1 ingredients/mAP (default: the main "
                                                "metric(s) of every task)")
    p.add_argument("--reference", help="method the others are compared with seed by seed (default: uniform "
                                       "where it ran)")
    p.add_argument("--split", choices=["test", "eval"],
                   help="test: each run's best.pt scored on data.test_split; eval: its last evaluation on "
                        "data.eval_split (default: test where every run has it, eval where none has)")
    p.add_argument("--out", help="also write the table to this file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from foodmtl.analysis.wandb_api import load_group

    runs = load_group(args.source, args.group)  # before pandas is imported: a wandb: source fails in ~1 s

    from foodmtl.analysis.comparable import check_comparable, check_tuning, select
    from foodmtl.analysis.pareto import with_front
    from foodmtl.analysis.table_formats import render
    from foodmtl.analysis.tables import figures_note, reported_split, runs_frame, runs_units, selection_notes, summarize

    runs = select(runs, args.where)
    check_comparable(runs)
    check_tuning(runs)
    split = reported_split(runs, args.split)
    summary = with_front(summarize(runs_frame(runs, split), args.metrics, args.reference, runs_units(runs), split,
                                   figures_note(runs, split), selection_notes(runs)))
    text = render(summary, args.format)
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0
