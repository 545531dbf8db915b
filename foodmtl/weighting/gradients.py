"""Per-task gradients and the base class of the Gram-matrix (gradient-level) strategies.

PCGrad, CAGrad, MGDA, IMTL-G and Nash-MTL all combine the per-task gradients
g_1..g_K linearly, g = sum_i c_i g_i, with coefficients c that depend on the
gradients only through their Gram matrix M = G G^T (K x K). ``GramWeighting``
therefore computes G once (K backward passes), lets the strategy turn M into
c, and writes G^T c into ``.grad``; no strategy file repeats that plumbing.

Where the gradients are taken (``rep_grad``):

* ``False``: w.r.t. the ``shared`` parameters; G^T c is added to their ``.grad``;
* ``True`` and a ``representation`` is given: w.r.t. the representation tensor
  (B x D values instead of millions); G^T c is back-propagated once through the
  backbone with ``representation.backward``. The losses must reach the shared
  parameters only through the representation (not true for a segmentation
  decoder on backbone feature maps): this is checked, with a ValueError.

Parameters the losses reach that are not shared (task heads, a strategy's own
parameters) get sum_i h_i grad L_i from one backward restricted to them; each
strategy documents its head weights h (1 for PCGrad/CAGrad/MGDA/IMTL as in
LibMTL and the papers' algorithms, alpha for Nash-MTL as in its official code).

Gradients are accumulated into ``.grad`` like ``Tensor.backward``.
AMP: the caller passes the losses it would back-propagate; with an fp16
GradScaler it unscales the final ``.grad`` (``scaler.unscale_``). That is exact
for strategies whose output is scale-equivariant (backward(s*L) = s*backward(L));
each strategy's docstring says whether it is.
DDP: the extra backward passes must run under ``no_sync()`` and the caller
averages the final ``.grad`` across ranks (the trainer does both).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from foodmtl.weighting.base import WeightingStrategy


def task_gradients(losses: Sequence[Tensor], inputs: Sequence[Tensor]) -> Tensor:
    """(K, d) matrix of flattened d L_k / d inputs; inputs a loss does not reach give 0."""
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(x)).reshape(-1)
                               for g, x in zip(grads, inputs)]))
    return torch.stack(rows)


def accumulate_grad(params: Sequence[Tensor], flat: Tensor) -> None:
    """Add the flat vector ``flat`` into the ``.grad`` of ``params`` (in order)."""
    offset = 0
    for p in params:
        piece = flat[offset:offset + p.numel()].view_as(p).to(p.dtype)
        offset += p.numel()
        if p.grad is None:
            p.grad = piece.clone()
        else:
            p.grad.add_(piece)


def reachable_leaves(losses: Sequence[Tensor], stop_at: Tensor | None = None) -> list[Tensor]:
    """Leaf tensors requiring grad that ``losses`` depend on, not looking behind ``stop_at``."""
    stop = stop_at.grad_fn if stop_at is not None else None
    stack = [loss.grad_fn for loss in losses if loss.grad_fn is not None]
    seen, leaves = set(), {}
    while stack:
        node = stack.pop()
        if node is None or node is stop or node in seen:
            continue
        seen.add(node)
        leaf = getattr(node, "variable", None)  # AccumulateGrad nodes hold their leaf
        if leaf is not None and leaf is not stop_at:
            leaves[id(leaf)] = leaf
        stack.extend(child for child, _ in node.next_functions)
    return list(leaves.values())


def min_norm_weights(gram: Tensor, max_iter: int = 250, tol: float = 1e-6) -> Tensor:
    """argmin over the simplex of ||G^T a||^2 = a^T M a (Sener & Koltun 2018, Alg. 2).

    Frank-Wolfe from the best pair (which is exact for K = 2), with the exact
    line search of the paper's Algorithm 1 for each step.
    """
    alpha = _best_pair(gram)
    for _ in range(max_iter):
        t = int(torch.argmin(gram @ alpha))
        vertex = torch.zeros_like(alpha)
        vertex[t] = 1.0
        gamma = _line_search(alpha @ gram @ alpha, alpha @ gram[:, t], gram[t, t])
        new = gamma * alpha + (1 - gamma) * vertex
        if float((new - alpha).abs().sum()) < tol:
            return new
        alpha = new
    return alpha


def _line_search(v1v1: Tensor, v1v2: Tensor, v2v2: Tensor) -> Tensor:
    """gamma in [0, 1] minimising ||gamma v1 + (1 - gamma) v2||^2 (paper's Algorithm 1)."""
    if v1v2 >= v1v1:
        return torch.ones_like(v1v1)
    if v1v2 >= v2v2:
        return torch.zeros_like(v1v1)
    return (v2v2 - v1v2) / (v1v1 + v2v2 - 2 * v1v2)


def _best_pair(gram: Tensor) -> Tensor:
    """The min-norm point over the best edge of the simplex (the solver's start)."""
    k = gram.shape[0]
    best, alpha = float("inf"), torch.zeros(k, dtype=gram.dtype)
    alpha[0] = 1.0
    for i in range(k):
        for j in range(i + 1, k):
            gamma = _line_search(gram[i, i], gram[i, j], gram[j, j])
            cost = float(gamma**2 * gram[i, i] + 2 * gamma * (1 - gamma) * gram[i, j]
                         + (1 - gamma)**2 * gram[j, j])
            if cost < best:
                best, alpha = cost, torch.zeros(k, dtype=gram.dtype)
                alpha[i], alpha[j] = gamma, 1 - gamma
    return alpha


class GramWeighting(WeightingStrategy):
    """Base of strategies whose combined gradient is G^T c with c = f(G G^T)."""

    gradient_based = True

    def __init__(self, tasks: Sequence[str], rep_grad: bool = False):
        super().__init__(tasks)
        if not isinstance(rep_grad, bool):
            raise ValueError(f"{type(self).__name__}: rep_grad={rep_grad!r} must be true or false")
        self.rep_grad = rep_grad

    def solve(self, tasks: list[str], gram: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        """float64 (shared coefficients c, head weights h) for the present ``tasks``."""
        raise NotImplementedError

    def backward(
        self,
        losses: dict[str, Tensor],
        shared: Sequence[nn.Parameter],
        representation: Tensor | None = None,
    ) -> dict[str, Tensor | float]:
        self._check(losses)
        tasks, values = list(losses), list(losses.values())
        use_rep = self.rep_grad and representation is not None
        shared = [p for p in shared if p.requires_grad]
        heads = self._heads(values, shared, representation if use_rep else None)
        inputs = [representation] if use_rep else shared
        grads = task_gradients(values, inputs)
        gram = (grads @ grads.T).double().cpu()  # K x K: the solvers run on the CPU
        detached = torch.stack([v.detach() for v in values]).double().cpu()
        coeffs, head_weights = self.solve(tasks, gram, detached)
        combined = coeffs.to(grads) @ grads
        if heads:
            weighted = sum(w * loss for w, loss in zip(head_weights.tolist(), values))
            torch.autograd.backward(weighted, inputs=heads, retain_graph=use_rep)
        if use_rep:
            representation.backward(combined.view_as(representation))
        else:
            accumulate_grad(shared, combined)
        return dict(zip(tasks, coeffs.tolist()))

    def _heads(self, losses: list[Tensor], shared: list[Tensor],
               representation: Tensor | None) -> list[Tensor]:
        """Non-shared leaves of the losses; with a representation, those in front of it."""
        shared_ids = {id(p) for p in shared}
        leaves = reachable_leaves(losses, stop_at=representation)
        if representation is not None and any(id(p) in shared_ids for p in leaves):
            raise ValueError(
                f"{type(self).__name__}(rep_grad=True): a loss reaches shared parameters other than "
                "through the representation (e.g. a segmentation decoder on backbone feature maps); "
                "use rep_grad=False")
        return [p for p in leaves if id(p) not in shared_ids]
