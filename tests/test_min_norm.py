"""The exact min-norm point over the simplex (MGDA's solver, ``gradients.min_norm_weights``).

References: an exhaustive enumeration of supports (the affine minimiser of each of
the 2^K - 1 supports, clipped onto the simplex; the best one) and Clarabel, through
cvxpy, on the gradients themselves. Tolerances: a^T M a to 1e-9 relative, plus
FLOOR max_i M_ii, because in float64 a^T M a is known only to about K eps max_i M_ii
(and the solver's ridge, 64 eps max_i M_ii, moves it by at most that): an optimum
near 0 (0 nearly in the convex hull) has no relative accuracy to test.
"""
import itertools
import warnings

import numpy as np
import pytest
import torch

from foodmtl.weighting import build_weighting
from foodmtl.weighting.gradients import _affine_min_norm, _bordered, gram_matrix, min_norm_weights

REL, FLOOR = 1e-9, 1e-13
KINDS = ("random", "ill_conditioned", "ill_conditioned_conflicting", "row_scales", "near_duplicate",
         "near_zero_in_hull", "rank_deficient")


def gradients(kind: str, k: int, seed: int) -> np.ndarray:
    """K x 3K gradients of one kind of hard case (seeded)."""
    rng = np.random.default_rng([KINDS.index(kind), k, seed])
    d = 3 * k
    g = rng.standard_normal((k, d))
    if kind.startswith("ill_conditioned"):  # singular values from 1 down to 1e-4 .. 1e-10
        u, _, vt = np.linalg.svd(g, full_matrices=False)
        g = (u * np.logspace(0, -rng.uniform(4, 10), k)) @ vt
        if kind.endswith("conflicting"):
            g[-1] -= 0.9 * g[:-1].sum(axis=0)
    elif kind == "row_scales":  # gradient norms from 1e-4 to 1e4
        g *= rng.permutation(np.logspace(-4, 4, k))[:, None]
    elif kind == "near_duplicate":  # equal up to 1e-9 relative: below the rounding of M's curvature
        g[1] = g[0] + 1e-9 * rng.standard_normal(d)
    elif kind == "near_zero_in_hull":  # the last cancels the others up to 1e-6
        g[-1] = -g[:-1].sum(axis=0) + 1e-6 * rng.standard_normal(d)
    elif kind == "rank_deficient":  # K gradients in a (K - 1)-dimensional subspace
        g = rng.standard_normal((k, k - 1)) @ rng.standard_normal((k - 1, d))
    return g


def enumerate_supports(m: np.ndarray) -> np.ndarray:
    """Every support's affine minimiser, clipped onto the simplex, is feasible; the best one is
    the optimum, which is the affine minimiser of its (affinely independent) support."""
    k, best, best_value = len(m), None, np.inf
    for size in range(1, k + 1):
        for support in map(list, itertools.combinations(range(k), size)):
            kkt = np.block([[m[np.ix_(support, support)], np.ones((size, 1))], [np.ones((1, size)), np.zeros((1, 1))]])
            a = np.linalg.lstsq(kkt, np.r_[np.zeros(size), 1.0], rcond=None)[0][:size]
            alpha = np.zeros(k)
            alpha[support] = np.clip(a, 0, None)
            if alpha.sum() > 0 and (value := (alpha / alpha.sum()) @ m @ (alpha / alpha.sum())) < best_value:
                best, best_value = alpha / alpha.sum(), value
    return best


def solve(m: np.ndarray) -> np.ndarray:
    return min_norm_weights(torch.from_numpy(m)).numpy()


def assert_optimal(alpha: np.ndarray, m: np.ndarray) -> None:
    """On the simplex, and KKT: every gradient's inner product with d = G^T a is >= ||d||^2."""
    scale = m.diagonal().max()
    assert alpha.min() >= 0 and alpha.sum() == pytest.approx(1.0, abs=1e-12)
    assert (m @ alpha).min() >= alpha @ m @ alpha - FLOOR * scale


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", range(2, 9))
def test_matches_the_exhaustive_enumeration_of_supports(kind, k):
    for seed in range(3):
        g = gradients(kind, k, seed)
        m = g @ g.T
        alpha = solve(m)
        assert_optimal(alpha, m)
        reference = enumerate_supports(m)
        value, expected = alpha @ m @ alpha, reference @ m @ reference
        assert abs(value - expected) <= REL * expected + FLOOR * m.diagonal().max(), (seed, value, expected)


@pytest.mark.parametrize("kind", ["random", "ill_conditioned_conflicting", "row_scales"])
@pytest.mark.parametrize("k", [2, 5, 8])
def test_is_at_least_as_good_as_a_qp_solver_on_the_gradients(kind, k):
    cp = pytest.importorskip("cvxpy")
    g = gradients(kind, k, seed=7)
    a = cp.Variable(k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cp.Problem(cp.Minimize(cp.sum_squares(g.T @ a)), [a >= 0, cp.sum(a) == 1]).solve(solver="CLARABEL")
    reference = np.clip(a.value, 0, None) / np.clip(a.value, 0, None).sum()  # feasible, so >= the optimum
    m = g @ g.T
    alpha = solve(m)
    assert alpha @ m @ alpha <= (1 + REL) * (reference @ m @ reference) + FLOOR * m.diagonal().max()
    if kind == "random":  # unique optimum: Clarabel's default tolerances (1e-8) bound the distance
        np.testing.assert_allclose(alpha, reference, atol=1e-6)


def test_mgda_update_opposes_no_task_on_an_ill_conditioned_conflict():
    """The issue's case: 5 conflicting tasks, singular values 1 .. 1e-6; Frank-Wolfe left
    g_t . d < 0 for some task. Now g_t . d >= ||d||^2 for every t."""
    g = torch.from_numpy(gradients("ill_conditioned_conflicting", 5, seed=0))
    theta = torch.zeros(g.shape[1], dtype=g.dtype, requires_grad=True)
    mgda = build_weighting("mgda", [f"t{i}" for i in range(5)], {"rep_grad": False})
    mgda.backward({f"t{i}": row @ theta for i, row in enumerate(g)}, [theta])
    d = theta.grad
    assert (g @ d).min() >= d @ d - FLOOR * g.pow(2).sum(1).max()


@pytest.mark.parametrize("rows, expected", [
    ([[2.0, 0.0]], [1.0]),                                          # K = 1
    ([[1.0, 2.0], [-1.0, -2.0]], [0.5, 0.5]),                       # opposite: d = 0
    ([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], [0.0, 1.0, 0.0]),        # a zero gradient is the minimum
    ([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0], [0.0, 0.0, 4.0]], None),   # checked by KKT only
])
def test_small_cases_by_hand(rows, expected):
    g = np.array(rows)
    m = g @ g.T
    alpha = solve(m)
    assert_optimal(alpha, m)
    if expected is not None:
        np.testing.assert_allclose(alpha, expected, atol=1e-12)


def test_duplicated_gradients_share_the_weight_of_one():
    g = gradients("random", 2, seed=0)
    alone = solve(g @ g.T)
    twice = np.vstack([g[:1], g])
    alpha = solve(twice @ twice.T)
    assert_optimal(alpha, twice @ twice.T)
    np.testing.assert_allclose([alpha[0] + alpha[1], alpha[2]], alone, atol=1e-12)


def test_all_zero_gradients_give_a_point_of_the_simplex():
    alpha = solve(np.zeros((3, 3)))
    assert alpha.min() >= 0 and alpha.sum() == pytest.approx(1.0)


def test_a_gram_matrix_rounded_through_float32_still_ends_at_a_kkt_point():
    """M from float32 gradients is PSD only to ~1e-7 relative (the QP is not convex at that scale):
    the solver must still stop (no strict progress, no cycling) at a KKT point to that accuracy."""
    for seed in range(40):
        g = gradients("near_duplicate", 2 + seed % 7, seed)
        g32 = torch.from_numpy(g).float()
        m = (g32 @ g32.T).double().numpy()
        alpha = solve(m)
        assert alpha.min() >= 0 and alpha.sum() == pytest.approx(1.0, abs=1e-12)
        assert (m @ alpha).min() >= alpha @ m @ alpha - 1e-5 * m.diagonal().max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_returns_the_callers_dtype_and_device(dtype):
    g = gradients("ill_conditioned_conflicting", 4, seed=1)
    gram = torch.from_numpy(g @ g.T)
    alpha = min_norm_weights(gram.to(dtype))
    assert alpha.dtype == dtype and alpha.device == gram.device
    # solved in float64 on the caller's (rounded) matrix
    torch.testing.assert_close(alpha, min_norm_weights(gram.to(dtype).double()).to(dtype), rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gram_gives_the_cpu_answer_on_cuda():
    g = gradients("ill_conditioned_conflicting", 6, seed=2)
    gram = torch.from_numpy(g @ g.T)
    alpha = min_norm_weights(gram.cuda())
    assert alpha.is_cuda
    torch.testing.assert_close(alpha.cpu(), min_norm_weights(gram), rtol=0, atol=0)


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_a_non_finite_gram_gives_nan_weights(bad):
    """An fp16 overflow step: NaN weights keep the overflow visible to the GradScaler."""
    gram = torch.eye(3, dtype=torch.float32)
    gram[1, 1] = bad
    alpha = min_norm_weights(gram)
    assert alpha.dtype == torch.float32 and torch.isnan(alpha).all()


def test_an_exactly_singular_affine_system_falls_back_to_least_squares():
    # two zero gradients together in a support: [0 0 1; 0 0 1; 1 1 0] is singular
    np.testing.assert_allclose(_affine_min_norm(_bordered(np.zeros((2, 2))), [0, 1]), [0.5, 0.5])


def test_mgda_builds_the_gram_matrix_of_float32_gradients_in_float64():
    """Two float32 gradients of norm ~6400 that differ by ~6 (orthogonally): the min-norm weights
    hang on ||g_1 - g_2||^2 = M_11 - 2 M_12 + M_22, which a float32 M rounds away (~1e-2 off);
    MGDA must give the weights of the exact (float64) M of the same float32 gradients."""
    rng = np.random.default_rng(0)
    v, delta = rng.standard_normal(4096) * 100, rng.standard_normal(4096) * 0.1
    delta -= delta @ v / (v @ v) * v
    g = torch.from_numpy(np.stack([v + delta, v - 2 * delta])).float()
    exact = min_norm_weights(g.double() @ g.double().T)
    rounded = min_norm_weights((g @ g.T).double())
    assert (rounded - exact).abs().max() > 5e-3  # the case is sensitive to the Gram's precision
    torch.testing.assert_close(gram_matrix(g, block=1000), g.double() @ g.double().T, rtol=1e-14, atol=0)
    shared = torch.nn.Parameter(torch.zeros(4096))
    mgda = build_weighting("mgda", ["a", "b"], {"rep_grad": False})
    weights = mgda.backward({"a": g[0] @ shared, "b": g[1] @ shared}, [shared])
    assert [weights["a"], weights["b"]] == pytest.approx(exact.tolist(), abs=1e-9)
