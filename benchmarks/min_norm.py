"""Cost of MGDA's exact min-norm solve (``gradients.min_norm_weights``) for K = 2..8 tasks.

Per K, ``--problems`` seeded Gram matrices of K gradients in 3K dimensions whose
last one opposes the others, half of them ill-conditioned (singular values
1 .. 1e-8), half not (then the optimum usually weights every task, Wolfe's
slowest case); each is solved ``--repeats`` times and its median kept. Prints a markdown table (and writes it to ``--out``)
with the median and the slowest problem's time, the worst KKT residual
max_t (a^T M a - (M a)_t) / max_i M_ii as a check, and, when clarabel (a
dev dependency) is installed, its interior-point solve of the same QP for scale:

    python benchmarks/min_norm.py --problems 50 --repeats 20
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from foodmtl.weighting.gradients import min_norm_weights


def conflicting_gram(k: int, seed: int) -> torch.Tensor:
    """G G^T of K gradients in 3K dimensions, the last opposing the others; odd seeds ill-conditioned."""
    rng = np.random.default_rng([k, seed])
    g = rng.standard_normal((k, 3 * k))
    if seed % 2:
        u, _, vt = np.linalg.svd(g, full_matrices=False)
        g = (u * np.logspace(0, -8, k)) @ vt
    g[-1] -= 0.9 * g[:-1].sum(axis=0)
    return torch.from_numpy(g @ g.T)


def median_seconds(solve, gram, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        solve(gram)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def kkt_residual(gram: torch.Tensor) -> float:
    alpha = min_norm_weights(gram)
    inner = gram @ alpha
    return float((alpha @ inner - inner.min()) / gram.diagonal().max())


def clarabel_solver():
    """min a^T M a over the simplex with clarabel's own API (no cvxpy overhead), or None."""
    try:
        import clarabel
        from scipy import sparse
    except ImportError:
        return None
    settings = clarabel.DefaultSettings()
    settings.verbose = False

    def solve(gram: torch.Tensor) -> np.ndarray:
        k = gram.shape[0]
        p = sparse.csc_matrix(np.triu(2 * gram.numpy()))
        a = sparse.csc_matrix(np.vstack([np.ones((1, k)), -np.eye(k)]))
        b = np.r_[1.0, np.zeros(k)]
        cones = [clarabel.ZeroConeT(1), clarabel.NonnegativeConeT(k)]
        return np.array(clarabel.DefaultSolver(p, np.zeros(k), a, b, cones, settings).solve().x)

    return solve


def row(k: int, args: argparse.Namespace, reference) -> str:
    grams = [conflicting_gram(k, seed) for seed in range(args.problems)]
    ours = [median_seconds(min_norm_weights, gram, args.repeats) for gram in grams]
    cells = [f"{k}", f"{statistics.median(ours) * 1e3:.3f}", f"{max(ours) * 1e3:.3f}",
             f"{max(kkt_residual(gram) for gram in grams):.1e}"]
    if reference is not None:
        cells.append(f"{statistics.median(median_seconds(reference, g, args.repeats) for g in grams) * 1e3:.2f}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args()
    reference = clarabel_solver()
    header = "| K | median ms | slowest problem ms | worst KKT residual |"
    rule = "| ---: | ---: | ---: | ---: |"
    if reference is not None:
        header, rule = header + " clarabel median ms |", rule + " ---: |"
    lines = [f"{args.problems} problems per K, median of {args.repeats} solves each, CPU, "
             f"numpy {np.__version__}, torch {torch.__version__}", "", header, rule]
    for k in range(2, 9):
        lines.append(row(k, args, reference))
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
