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

import numpy as np
import torch
from scipy.linalg import lapack
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


def gram_matrix(grads: Tensor, block: int = 1 << 20) -> Tensor:
    """G G^T in float64, on ``grads``' device. A float32 product rounds each entry to ~1e-7 of
    ||g_i|| ||g_j||, which swamps ||g_i - g_j||^2 for nearly collinear gradients (the MGDA weights
    then move by ~1e-2; tests/test_min_norm.py); the products of float32 values are exact in float64.
    Summed over column blocks so the float64 copy holds at most K x ``block`` values."""
    gram = grads.new_zeros((grads.shape[0], grads.shape[0]), dtype=torch.float64)
    for part in grads.split(block, dim=1):
        part = part.double()
        gram += part @ part.T
    return gram


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


# Rounding leaves M_ij off by about K eps sqrt(M_ii M_jj), so M can be slightly indefinite
# along the difference of near-duplicate gradients; this relative ridge keeps the QP strictly
# convex there (they then swap in and out of the support) and moves a^T M a by at most
# _RIDGE max_i M_ii.
_RIDGE = 64 * np.finfo(np.float64).eps


def min_norm_weights(gram: Tensor) -> Tensor:
    """argmin over the simplex of a^T M a = ||G^T a||^2, exactly (the MGDA direction).

    Wolfe's min-norm-point algorithm (Math. Programming 11, 1976), an active-set
    method that ends in finitely many steps at the optimum, replaces the paper's
    Frank-Wolfe, whose 250 iterations can stop far above the optimum on
    ill-conditioned, conflicting problems (issue 13). Written by hand: scipy has
    no QP over the simplex (SLSQP is approximate), and Clarabel (interior point,
    a dev-only dependency) stops at its 1e-8 tolerances and is slower
    (benchmarks/min_norm.py). Computed in float64 on the CPU (~0.1 ms for K <= 8)
    and returned in ``gram``'s dtype and device. A non-finite ``gram``
    (an fp16 overflow step) gives NaN weights, so the GradScaler still sees the
    overflow and skips the step.
    """
    m = gram.detach().to("cpu", torch.float64).numpy()
    if np.isfinite(m).all():
        alpha = _wolfe(_bordered(m))
    else:
        alpha = np.full(m.shape[0], np.nan)
    return torch.from_numpy(alpha).to(device=gram.device, dtype=gram.dtype)


def _bordered(m: np.ndarray) -> np.ndarray:
    """[M 1; 1' 0] with the ridge on M's diagonal; every affine min-norm problem is a block of it."""
    k = m.shape[0]
    kkt = np.ones((k + 1, k + 1))
    kkt[:k, :k] = m
    kkt[range(k), range(k)] *= 1 + _RIDGE
    kkt[k, k] = 0.0
    return kkt


def _wolfe(kkt: np.ndarray) -> np.ndarray:
    """Wolfe's major cycle: add the gradient most opposed to x = G^T a while that lowers ||x||."""
    k = kkt.shape[0] - 1
    m = kkt[:k, :k]
    support = [int(m.diagonal().argmin())]
    alpha = np.zeros(k)
    alpha[support] = 1.0
    value = alpha.dot(m.dot(alpha))
    while True:
        inner = m.dot(alpha)  # <x, g_t>; a is optimal when every one is >= ||x||^2
        t = int(inner.argmin())
        if t in support or inner[t] >= value:
            return alpha
        candidate, new_support = _corral(kkt, alpha, support + [t])
        new_value = candidate.dot(m.dot(candidate))
        if not new_value < value:  # rounding: no strict progress, hence no cycling
            return alpha
        alpha, support, value = candidate, new_support, new_value


def _corral(kkt: np.ndarray, alpha: np.ndarray, support: list[int]) -> tuple[np.ndarray, list[int]]:
    """Wolfe's minor cycle: the affine min-norm point of ``support``; while it has negative
    weights, step from ``alpha`` towards it until one vanishes, and drop that gradient."""
    weights = alpha[support]
    while True:
        mu = _affine_min_norm(kkt, support)
        if mu.min() >= 0:
            break
        neg = mu < 0
        ratios = np.full(len(mu), np.inf)
        ratios[neg] = weights[neg] / (weights[neg] - mu[neg])  # in [0, 1): weights >= 0 > mu
        drop = int(ratios.argmin())
        weights = np.maximum(weights + ratios[drop] * (mu - weights), 0.0)
        del support[drop]
        weights = np.delete(weights, drop)
    out = np.zeros(len(alpha))
    out[support] = mu / mu.sum()
    return out, [s for s, w in zip(support, mu) if w > 0]


def _affine_min_norm(kkt: np.ndarray, support: list[int]) -> np.ndarray:
    """argmin of a^T M a over sum(a) = 1 on ``support``: [M_SS 1; 1' 0][a; l] = [0; 1]."""
    rows = np.array(support + [kkt.shape[0] - 1])
    block = kkt.take(rows, 0).take(rows, 1)
    rhs = np.zeros(len(rows))
    rhs[-1] = 1.0
    solution, info = lapack.dgesv(block, rhs)[2:]
    if info > 0:  # exactly singular in floating point: gradients affinely dependent
        solution = np.linalg.lstsq(block, rhs, rcond=None)[0]
    return solution[:-1]


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
        gram = gram_matrix(grads).cpu()  # K x K: the solvers run on the CPU
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
