"""Gradient diagnostics: how the tasks' gradients relate, logged every ``train.grad_diagnostics_every`` steps.

On a diagnosed step, for the losses present in it (metrics.jsonl and W&B, issue 26 item 5):

* ``diag/gradnorm/<t>``: the L2 norm of loss t's gradient on the shared representation
  (``StepOutput.representation``, the pooled features the heads read, which the gradient-level
  strategies use with ``rep_grad``: weighting/gradients.py);
* ``diag/cos/<a>|<b>``: the cosine of losses a's and b's gradients there;
* with ``train.grad_diagnostics_shared``, the same on the backbone's trainable parameters under
  ``diag/shared/...`` (K more backward passes through the backbone: see docs/benchmarks.md);
* at each evaluation, in its record: ``diag/conflict/<a>|<b>``, the share of the steps diagnosed
  since the previous evaluation whose cosine was negative ("conflicting gradients", Yu et al.,
  NeurIPS 2020, Def. 1), ``diag/diagnosed_steps``, and in W&B a heatmap of the mean cosine
  matrix over those steps (``diag/cos_heatmap``).

What is measured is the gradient of the objective the step minimises, (1/(W n)) sum over the W
ranks and n accumulated micro-batches of each one's mean loss, with respect to the representation
of the whole global batch. That representation is the ranks' and micro-batches' blocks side by
side, so <g_a, g_b> = sum_{r,i} <g_a^{r,i}, g_b^{r,i}> / (W n)^2: each rank sums its K x K Gram
matrices over the window and one all-reduce of K^2 numbers gives every rank the same numbers, a
function of the global batch. On the shared parameters the gradient is the ranks' mean (what DDP's
all-reduce forms), so the K per-task gradient vectors are all-reduced.

Training is unchanged: the gradients come from ``torch.autograd.grad(retain_graph=True)`` before the
strategy's backward, which writes no ``.grad`` and draws no random number. AMP: taken from the
losses as the GradScaler scales them, unscaled in float64; a step whose Gram matrix is not finite
(an fp16 overflow) is not diagnosed. A loss that does not reach the representation (a
segmentation decoder reads the backbone's feature maps) has no gradient there and is left out;
``train.grad_diagnostics_shared`` shows it. The conflict counts are not checkpointed: after a
mid-epoch resume they cover the steps run since.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from foodmtl.engine.distributed import DistInfo
from foodmtl.weighting.gradients import task_gradients

PREFIXES = {"representation": "diag/", "shared": "diag/shared/"}


def pair_name(a: str, b: str) -> str:
    return f"{a}|{b}"


def cosines(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(norms, cosine matrix) of a Gram matrix; cosines of a zero-norm gradient are NaN."""
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.clip(gram / np.outer(norms, norms), -1.0, 1.0)  # rounding can leave |cos| a hair above 1
    cos[norms == 0, :] = np.nan
    cos[:, norms == 0] = np.nan
    return norms, cos


@dataclass
class Interval:
    """Cosine sums and counts per pair over the steps diagnosed since the last evaluation."""

    size: int
    steps: int = 0
    total: np.ndarray = field(init=False)
    seen: np.ndarray = field(init=False)
    negative: np.ndarray = field(init=False)

    def __post_init__(self):
        self.total, self.seen, self.negative = (np.zeros((self.size, self.size)) for _ in range(3))

    def add(self, cos: np.ndarray) -> None:
        known = np.isfinite(cos)
        self.steps += 1
        self.total += np.where(known, cos, 0.0)
        self.seen += known
        self.negative += known & (cos < 0)

    def mean(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.total / self.seen


class Window:
    """One diagnosed step's per-rank sums, filled micro-batch by micro-batch."""

    def __init__(self, size: int, shared: list[Tensor]):
        self.gram = torch.zeros(size, size, dtype=torch.float64)
        self.shared = shared
        self.flat: Tensor | None = None  # K x P sum of the per-task gradients on ``shared``

    def add(self, rows: list[int], losses: list[Tensor], representation: Tensor, scale: float) -> None:
        """``losses`` as the step back-propagates them (scaled by the GradScaler's ``scale``)."""
        grads = task_gradients(losses, [representation]).double() / scale
        index = torch.tensor(rows)
        self.gram[index[:, None], index] += (grads @ grads.T).cpu()
        if self.shared:
            if self.flat is None:
                self.flat = torch.zeros(len(self.gram), sum(p.numel() for p in self.shared),
                                        device=representation.device)
            self.flat[index] += task_gradients(losses, self.shared).float() / scale


class GradDiagnostics:
    """``tasks``: every weighted loss, in order; ``every``: steps between diagnoses (0: off);
    ``shared``: also on the shared parameters each window is given."""

    def __init__(self, tasks: list[str], every: int, shared: bool, info: DistInfo):
        self.tasks, self.every, self.shared, self.info = list(tasks), every, shared, info
        self.intervals = {space: Interval(len(self.tasks)) for space in self.spaces}

    @property
    def spaces(self) -> list[str]:
        return ["representation", "shared"] if self.shared else ["representation"]

    def due(self, step: int) -> bool:
        """Whether 0-based optimizer step ``step`` is diagnosed."""
        return self.every > 0 and (step + 1) % self.every == 0

    def window(self, params: list[Tensor]) -> Window:
        """A diagnosed step's accumulator; ``params``: the shared parameters now trainable (a frozen
        backbone may join later: train.unfreeze_at)."""
        return Window(len(self.tasks), params if self.shared else [])

    def record(self, window: Window) -> dict[str, float]:
        """The step's norms and cosines (identical on every rank: collective), added to the interval."""
        grams = {"representation": self._sum_over_ranks(window.gram)}
        if self.shared:
            grams["shared"] = self._shared_gram(window)
        if not all(bool(torch.isfinite(g).all()) for g in grams.values()):
            return {}
        out: dict[str, float] = {}
        for space, gram in grams.items():
            norms, cos = cosines(gram.numpy())
            self.intervals[space].add(cos)
            out.update(self._values(PREFIXES[space], norms, cos))
        return out

    def _values(self, prefix: str, norms: np.ndarray, cos: np.ndarray) -> dict[str, float]:
        out = {f"{prefix}gradnorm/{t}": float(n) for t, n in zip(self.tasks, norms) if n > 0}
        for i, j in self._pairs():
            if math.isfinite(cos[i, j]):
                out[f"{prefix}cos/{pair_name(self.tasks[i], self.tasks[j])}"] = float(cos[i, j])
        return out

    def _pairs(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(len(self.tasks)) for j in range(i + 1, len(self.tasks))]

    def _sum_over_ranks(self, gram: Tensor) -> Tensor:
        if self.info.world > 1:
            gram = gram.to(self.info.device)
            dist.all_reduce(gram)
        return gram.cpu() / self.info.world ** 2

    def _shared_gram(self, window: Window) -> Tensor:
        flat = window.flat
        if flat is None:  # nothing present on this rank in the window: its gradients are 0
            flat = torch.zeros(len(self.tasks), sum(p.numel() for p in window.shared), device=self.info.device)
        if self.info.world > 1:
            dist.all_reduce(flat)
            flat = flat / self.info.world
        return (flat @ flat.T).double().cpu()

    def at_evaluation(self, wandb, step: int) -> dict[str, float]:
        """The conflict rates since the last evaluation, for its record; the mean cosine heatmap
        to ``wandb`` (a WandbWriter, or None). Starts the next interval."""
        out: dict[str, float] = {}
        for space, interval in self.intervals.items():
            if not interval.steps:
                continue
            prefix = PREFIXES[space]
            out[f"{prefix}diagnosed_steps"] = interval.steps
            for i, j in self._pairs():
                if interval.seen[i, j]:
                    rate = interval.negative[i, j] / interval.seen[i, j]
                    out[f"{prefix}conflict/{pair_name(self.tasks[i], self.tasks[j])}"] = float(rate)
            if len(self.tasks) > 1 and wandb is not None and wandb.run is not None:
                title = f"mean cosine of task gradients on the {space}, {interval.steps} step(s) to step {step}"
                wandb.log_images(f"{prefix}cos_heatmap", [heatmap_image(interval.mean(), self.tasks, title)], step)
            self.intervals[space] = Interval(len(self.tasks))
        return out


def heatmap_image(cos: np.ndarray, tasks: list[str], title: str):
    """A wandb.Image of the cosine matrix (diverging colours, -1 blue to +1 red, values written in)."""
    import wandb
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = cos.copy()
    np.fill_diagonal(matrix, 1.0)
    fig = Figure(figsize=(1.2 + 0.8 * len(tasks), 0.8 + 0.8 * len(tasks)), layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right")
    ax.set_yticks(range(len(tasks)), tasks)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, "–" if np.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.8)
    canvas.draw()
    return wandb.Image(np.asarray(canvas.buffer_rgba())[..., :3], caption=title)
