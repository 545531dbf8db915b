"""Step time of every registered loss-weighting strategy on one small model.

A full train step (forward, the strategy's backward, AdamW step, and the
strategy's update, including FAMO's no-grad re-forward) of a timm backbone
with four linear heads on its pooled features, on the CPU. Strategies with a
``rep_grad`` option are timed both ways. Prints a markdown table (and writes
it to ``--out``):

    python benchmarks/weighting.py --backbone resnet18 --batch 16 --size 128 --steps 5
"""
from __future__ import annotations

import argparse
import inspect
import statistics
import time
from pathlib import Path

import timm
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from foodmtl.weighting import WEIGHTINGS, WeightingStrategy, build_weighting

# name -> number of classes; "ingredients" is multi-label, the others multiclass
TASKS = {"dish": 101, "category": 20, "cuisine": 12, "ingredients": 50}


class Model(nn.Module):
    def __init__(self, backbone: str):
        super().__init__()
        self.backbone = timm.create_model(backbone, pretrained=False, num_classes=0)
        self.heads = nn.ModuleDict({t: nn.Linear(self.backbone.num_features, n) for t, n in TASKS.items()})

    def forward(self, images: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        pooled = self.backbone(images)
        return pooled, {t: head(pooled) for t, head in self.heads.items()}


def task_losses(logits: dict[str, Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
    return {t: (F.binary_cross_entropy_with_logits if t == "ingredients" else F.cross_entropy)(x, targets[t])
            for t, x in logits.items()}


def make_batch(batch: int, size: int) -> tuple[Tensor, dict[str, Tensor]]:
    gen = torch.Generator().manual_seed(0)
    targets = {t: torch.randint(0, n, (batch,), generator=gen) for t, n in TASKS.items()}
    targets["ingredients"] = (torch.rand(batch, TASKS["ingredients"], generator=gen) < 0.1).float()
    return torch.randn(batch, 3, size, size, generator=gen), targets


def variants() -> list[tuple[str, dict]]:
    """Every registered strategy with its defaults; both ``rep_grad`` settings where it has one."""
    out = []
    for name in WEIGHTINGS.names():
        rep_grad = inspect.signature(WEIGHTINGS.get(name).__init__).parameters.get("rep_grad")
        if rep_grad is None:
            out.append((name, {}))
        else:
            out += [(name, {"rep_grad": rep_grad.default}), (name, {"rep_grad": not rep_grad.default})]
    return out


def train_step(model: Model, strategy: WeightingStrategy, optimizer: torch.optim.Optimizer,
               images: Tensor, targets: dict[str, Tensor]) -> None:
    optimizer.zero_grad(set_to_none=True)
    pooled, logits = model(images)
    losses = task_losses(logits, targets)
    if strategy.gradient_based:
        strategy.backward(losses, list(model.backbone.parameters()), pooled)
    else:
        strategy(losses).total.backward()
    optimizer.step()
    if strategy.post_step_losses:  # FAMO learns from the same batch's losses after the step
        with torch.no_grad():
            losses = task_losses(model(images)[1], targets)
    strategy.update({t: loss.detach() for t, loss in losses.items()})


def median_step_time(name: str, options: dict, args: argparse.Namespace) -> float:
    torch.manual_seed(0)
    model, strategy = Model(args.backbone), build_weighting(name, list(TASKS), options)
    optimizer = torch.optim.AdamW([*model.parameters(), *strategy.parameters()], lr=1e-4)
    images, targets = make_batch(args.batch, args.size)
    times = []
    for _ in range(args.warmup + args.steps):
        start = time.perf_counter()
        train_step(model, strategy, optimizer, images, targets)
        times.append(time.perf_counter() - start)
    return statistics.median(times[args.warmup:])


def table(rows: list[tuple[str, dict, float]], args: argparse.Namespace) -> str:
    uniform = next(t for name, options, t in rows if name == "uniform")
    lines = [f"{args.backbone}, batch {args.batch}, {args.size} px, CPU, {args.threads} threads, "
             f"median of {args.steps} steps after {args.warmup} warm-up, torch {torch.__version__}",
             "", "| strategy | options | s / step | × uniform |", "| --- | --- | ---: | ---: |"]
    for name, options, seconds in rows:
        shown = ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
        lines.append(f"| {name} | {shown} | {seconds:.3f} | {seconds / uniform:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, options in variants():
        rows.append((name, options, median_step_time(name, options, args)))
        print(f"{name} {options}: {rows[-1][2]:.3f} s", flush=True)
    text = table(rows, args)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
