"""The trivial regressor of a config's regression tasks: predict the training mean for every image.

Prints, per regression task, the MAE and MAE % (of the mean true value, as the regression kind
reports them) on the split a run reports, the config's test split (its eval split where it has none):
the figure a trained model's test MAE must beat.

    python benchmarks/regression_baseline.py experiments/synthfood/benchmark.yaml [key=value ...]
"""
from __future__ import annotations

import argparse

import numpy as np

from foodmtl.config import load_config

from foodmtl.tasks import task_options
from foodmtl.data.builder import build_data


def mean_predictor(cfg) -> dict[str, dict[str, float]]:
    data = build_data(cfg.data, cfg.tasks, cfg.train.seed, task_options(cfg))
    held_out = data.test if data.test is not None else data.eval
    rows = {}
    for spec in (t for t in data.tasks if t.kind == "regression"):
        truth = np.asarray(held_out.labels[spec.name].labelled(), dtype=float)
        mae = float(np.abs(truth - spec.stats["mean"]).mean())
        rows[spec.name] = {"train_mean": spec.stats["mean"], "n_eval": len(truth), "mae": mae,
                           "mae_pct": 100 * mae / float(truth.mean())}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    rows = mean_predictor(load_config(args.config, args.overrides))
    print("| task | training mean | test images | MAE | MAE % |\n|---|---:|---:|---:|---:|")
    for task, r in rows.items():
        print(f"| {task} | {r['train_mean']:.1f} | {r['n_eval']} | {r['mae']:.2f} | {r['mae_pct']:.2f} |")


if __name__ == "__main__":
    main()
