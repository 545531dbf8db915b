"""Loss-weighting strategies beyond uniform/manual/uncertainty.

Hand-computed cases, absent tasks, every strategy on a tiny model, and agreement
with reference implementations (LibMTL 1.1.5 and TorchJD, both pinned in
requirements-dev.txt; the skips only guard a bare runtime install).
"""
import importlib
import importlib.util
import inspect
import math
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from foodmtl.weighting import WEIGHTINGS, build_weighting
from foodmtl.weighting.gradients import min_norm_weights
from foodmtl.weighting.nashmtl import nash_weights

# strategy -> its default rep_grad, for every strategy that has the option
REP_GRAD = {name: option.default for name in WEIGHTINGS.names()
            if (option := inspect.signature(WEIGHTINGS.get(name).__init__).parameters.get("rep_grad"))}


def linear_backward(name, grads, tasks=None, **options):
    """Run ``name`` on losses L_i = g_i . theta, whose gradients are exactly the rows of ``grads``."""
    tasks = tasks or [f"t{i}" for i in range(len(grads))]
    theta = torch.zeros(grads.shape[1], dtype=grads.dtype, requires_grad=True)
    strategy = build_weighting(name, tasks, options)
    weights = strategy.backward({t: g @ theta for t, g in zip(tasks, grads)}, [theta])
    return theta.grad, weights


class Tiny(nn.Module):
    """Shared MLP -> representation -> one linear head per task."""

    def __init__(self, tasks):
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 4))
        self.heads = nn.ModuleDict({t: nn.Linear(4, 3) for t in tasks})

    def losses(self, present, seed=0):
        gen = torch.Generator().manual_seed(seed)
        x, y = torch.randn(8, 5, generator=gen), torch.randint(0, 3, (8,), generator=gen)
        rep = self.shared(x)
        return rep, {t: F.cross_entropy(self.heads[t](rep), (y + i) % 3) for i, t in enumerate(present)}


def run_step(name, tasks, present, options=None, seed=0):
    torch.manual_seed(seed)
    model, strategy = Tiny(tasks), build_weighting(name, tasks, options)
    rep, losses = model.losses(present, seed)
    weights = strategy.backward(losses, list(model.shared.parameters()), rep)
    return model, strategy, losses, weights


# --- hand-computed cases -------------------------------------------------------------------------

@pytest.mark.parametrize("order", [["a", "b"], ["b", "a"]])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pcgrad_projects_two_conflicting_gradients(order, seed):
    # g_a.g_b = -1: g_a^PC = g_a + g_b / 2 = (.5, .5), g_b^PC = g_b + g_a = (0, 1); sum (.5, 1.5)
    g = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([-1.0, 1.0])}
    torch.manual_seed(seed)
    grad, weights = linear_backward("pcgrad", torch.stack([g[t] for t in order]), tasks=order)
    torch.testing.assert_close(grad, torch.tensor([0.5, 1.5]))
    assert weights == pytest.approx({"a": 2.0, "b": 1.5})


def test_pcgrad_leaves_agreeing_gradients_summed():
    grad, _ = linear_backward("pcgrad", torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    torch.testing.assert_close(grad, torch.tensor([2.0, 1.0]))


@pytest.mark.parametrize("g1, g2", [([1.0, 0.0], [0.0, 2.0]), ([1.0, 0.0], [2.0, 0.0]),
                                    ([3.0, 1.0], [-1.0, 2.0])])
def test_mgda_two_gradients_match_closed_form(g1, g2):
    g1, g2 = torch.tensor(g1), torch.tensor(g2)
    gamma = ((g2 - g1) @ g2 / (g1 - g2).pow(2).sum()).clamp(0, 1)  # weight of g1 at the min-norm point
    grad, weights = linear_backward("mgda", torch.stack([g1, g2]))
    torch.testing.assert_close(grad, gamma * g1 + (1 - gamma) * g2)
    assert weights["t0"] == pytest.approx(float(gamma))


def test_mgda_min_norm_solver_on_three_orthogonal_gradients():
    # ||sum a_i e_i s_i||^2 = sum a_i^2 s_i^2 is minimised at a_i proportional to 1 / s_i^2
    alpha = min_norm_weights(torch.diag(torch.tensor([1.0, 4.0, 16.0], dtype=torch.float64)))
    expected = torch.tensor([1.0, 0.25, 0.0625], dtype=torch.float64)
    torch.testing.assert_close(alpha, expected / expected.sum(), atol=1e-12, rtol=0)  # exact solver


def test_mgda_l2_normalisation_weights_ignore_gradient_scale():
    g = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, -0.5]])
    _, plain = linear_backward("mgda", g, normalization="l2")
    grad, scaled = linear_backward("mgda", g * torch.tensor([[1.0], [10.0]]), normalization="l2")
    assert scaled == pytest.approx(plain)
    # the official code applies the weights to the raw (unnormalised) gradients
    torch.testing.assert_close(grad, plain["t0"] * g[0] + 10 * plain["t1"] * g[1])


def test_imtl_g_matches_the_papers_closed_form():
    torch.manual_seed(0)
    g = torch.randn(3, 7, dtype=torch.float64)
    u = g / g.norm(dim=1, keepdim=True)
    d, uu = g[:1] - g[1:], u[:1] - u[1:]
    alpha_rest = g[0] @ uu.T @ torch.linalg.inv(d @ uu.T)  # alpha_{2:K} = g_1 U^T (D U^T)^{-1}
    alpha = torch.cat([1 - alpha_rest.sum(dim=0, keepdim=True), alpha_rest])
    grad, weights = linear_backward("imtl", g)
    torch.testing.assert_close(grad, alpha @ g)
    projections = u @ grad  # impartial: equal projection onto every task's unit gradient
    torch.testing.assert_close(projections, projections[:1].expand(3))
    assert sum(weights.values()) == pytest.approx(1.0)


def test_imtl_l_scales_losses_and_learns_their_scales():
    g = torch.tensor([[1.0, 0.5], [-0.3, 1.0]])
    imtl = build_weighting("imtl", ["a", "b"], {"loss_balance": True})
    with torch.no_grad():
        imtl.loss_scales["a"].fill_(math.log(2.0))
    theta = torch.zeros(2, requires_grad=True)
    imtl.backward({"a": 3.0 + g[0] @ theta, "b": 0.5 + g[1] @ theta}, [theta])
    # d/ds (e^s L - s) = e^s L - 1; IMTL-G then runs on the scaled gradients (2 g_a, g_b)
    assert imtl.loss_scales["a"].grad.item() == pytest.approx(2 * 3.0 - 1)
    assert imtl.loss_scales["b"].grad.item() == pytest.approx(0.5 - 1)
    expected, _ = linear_backward("imtl", g * torch.tensor([[2.0], [1.0]]))
    torch.testing.assert_close(theta.grad, expected)


def test_nashmtl_solves_the_bargaining_equation():
    torch.manual_seed(0)
    g = torch.randn(3, 10, dtype=torch.float64) * torch.tensor([[1.0], [3.0], [0.2]])
    grad, weights = linear_backward("nashmtl", g, max_norm=0.0)
    alpha = torch.tensor(list(weights.values()), dtype=torch.float64)
    assert (alpha > 0).all()
    torch.testing.assert_close(g @ g.T @ alpha, 1 / alpha, rtol=1e-7, atol=0)  # G G^T alpha = 1/alpha
    torch.testing.assert_close(grad, alpha @ g)


def test_nashmtl_solver_handles_very_different_scales_and_a_zero_gradient():
    torch.manual_seed(1)
    scales = torch.tensor([[1.0], [1e-3], [1e3], [0.0]], dtype=torch.float64)
    g = torch.randn(4, 10, dtype=torch.float64) * scales
    alpha = nash_weights(g @ g.T)
    torch.testing.assert_close((g[:3] @ g[:3].T @ alpha[:3]) * alpha[:3], torch.ones(3, dtype=torch.float64))
    assert alpha[3] == 1.0  # no shared gradient: its head keeps the plain gradient


def test_nashmtl_recomputes_every_update_every_steps_and_when_tasks_change():
    theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    nash = build_weighting("nashmtl", ["a", "b", "c"], {"update_every": 2, "max_norm": 0.0})
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)

    def step(scale, tasks="ab"):
        return nash.backward({t: scale * g["abc".index(t)] @ theta for t in tasks}, [theta])

    first = step(1.0)
    assert step(3.0) == first  # step 2 of 2: alpha kept
    assert step(3.0)["a"] == pytest.approx(first["a"] / 3)  # step 3: recomputed (alpha scales as 1/s)
    assert set(step(3.0, "bc")) == {"b", "c"}  # a new task set is solved at once
    assert nash.alpha[0] == pytest.approx(first["a"] / 3)  # absent a keeps its alpha
    every_step = build_weighting("nashmtl", ["a", "b"], {"max_norm": 0.0})
    one = every_step.backward({t: g[i] @ theta for i, t in enumerate("ab")}, [theta])
    two = every_step.backward({t: 2 * g[i] @ theta for i, t in enumerate("ab")}, [theta])
    assert two["a"] == pytest.approx(one["a"] / 2)


def test_gram_strategies_accumulate_into_existing_grads_like_backward():
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    theta = torch.zeros(2, requires_grad=True)
    pcgrad = build_weighting("pcgrad", ["a", "b"])
    for _ in range(2):
        pcgrad.backward({"a": g[0] @ theta, "b": g[1] @ theta}, [theta])
    torch.testing.assert_close(theta.grad, 2 * torch.tensor([0.5, 1.5]))


def test_nashmtl_clips_the_shared_update_to_max_norm():
    """Orthogonal gradients: the Nash solution G G^T alpha = 1/alpha is alpha_i = 1/||g_i|| = (100, 50),
    so alpha @ g = (1, 1), of norm sqrt(2) > 0.5: scaled (not bent) to 0.5 / sqrt(2) * (1, 1)."""
    g = torch.tensor([[0.01, 0.0], [0.0, 0.02]], dtype=torch.float64)
    grad, _ = linear_backward("nashmtl", g, max_norm=0.5)
    torch.testing.assert_close(grad, torch.full((2,), 0.5 / 2**0.5, dtype=torch.float64), rtol=1e-6, atol=0)


def test_cagrad_with_c0_is_the_mean_gradient():
    torch.manual_seed(0)
    g = torch.randn(3, 6)
    grad, weights = linear_backward("cagrad", g, c=0.0)
    torch.testing.assert_close(grad, g.mean(0))
    assert list(weights.values()) == pytest.approx([1 / 3] * 3)


def test_cagrad_moves_towards_the_worst_task():
    g = torch.tensor([[1.0, 0.0], [-0.5, 0.1]])
    grad, _ = linear_backward("cagrad", g, c=0.4, rescale=0)
    # the mean gradient barely helps task 2; CAGrad raises its minimum improvement
    assert float((g @ grad).min()) > float((g @ g.mean(0)).min())


def test_rlw_weights_sum_to_k_and_change_every_step():
    rlw = build_weighting("rlw", ["a", "b", "c"])
    losses = {t: torch.tensor(1.0) for t in "abc"}
    first, second = rlw(losses).weights, rlw(losses).weights
    assert sum(first.values()) == pytest.approx(3.0) and sum(second.values()) == pytest.approx(3.0)
    assert first != second
    assert sum(rlw({"a": torch.tensor(1.0)}).weights.values()) == pytest.approx(1.0)


def test_dwa_weights_from_epoch_average_losses():
    dwa = build_weighting("dwa", ["a", "b"], {"T": 2.0})
    epochs = [[(0.8, 2.2), (1.2, 1.8)], [(0.5, 1.7), (0.5, 1.9)]]  # averages (1, 2) then (.5, 1.8)
    for epoch in epochs:
        assert dwa({"a": torch.tensor(1.0), "b": torch.tensor(1.0)}).weights == {"a": 1.0, "b": 1.0}
        for la, lb in epoch:
            dwa.update({"a": torch.tensor(la), "b": torch.tensor(lb)})
        dwa.end_epoch()
    ea, eb = math.exp(0.5 / 2), math.exp(0.9 / 2)  # r = (.5/1, 1.8/2)
    out = dwa({"a": torch.tensor(3.0), "b": torch.tensor(1.0)})
    assert out.weights == pytest.approx({"a": 2 * ea / (ea + eb), "b": 2 * eb / (ea + eb)})
    assert out.total.item() == pytest.approx(3 * out.weights["a"] + out.weights["b"])


def test_dwa_task_absent_for_an_epoch_keeps_its_history():
    dwa = build_weighting("dwa", ["a", "b"])
    for la, lb in [(1.0, 2.0), (0.5, 1.0)]:
        dwa.update({"a": torch.tensor(la), "b": torch.tensor(lb)})
        dwa.end_epoch()
    before = dwa.history.clone()
    dwa.update({"a": torch.tensor(0.4)})  # b absent for a whole epoch
    dwa.end_epoch()
    assert dwa.history[:, 1].tolist() == before[:, 1].tolist()
    ea, eb = math.exp(0.8 / 2), math.exp(0.5 / 2)  # r_a = .4/.5, r_b = 1/2 (its last two epochs)
    assert dwa.weights().tolist() == pytest.approx([2 * ea / (ea + eb), 2 * eb / (ea + eb)])


def test_gradnorm_target_and_weight_update_on_a_tiny_layer():
    gradnorm = build_weighting("gradnorm", ["a", "b"], {"alpha": 1.5})
    layer = nn.Parameter(torch.zeros(2, 2))  # the last shared layer; feature = layer @ x
    x = torch.tensor([1.0, 0.0])
    heads = {"a": torch.tensor([3.0, 4.0]), "b": torch.tensor([1.0, 0.0])}

    def losses(ca, cb):
        # value c at layer = 0; ||grad_layer L|| = ||head|| ||x|| = 5 (task a), 1 (task b)
        feature = layer @ x
        return {"a": ca + heads["a"] @ feature, "b": cb + heads["b"] @ feature}

    gradnorm.backward(losses(2.0, 4.0), [layer])  # first step records L(0): r = 1, target = G_avg = 3
    assert gradnorm.weights["a"].grad.item() == pytest.approx(5.0)   # G_a = 5 > 3: push w_a down
    assert gradnorm.weights["b"].grad.item() == pytest.approx(-1.0)  # G_b = 1 < 3: push w_b up
    gradnorm.zero_grad(set_to_none=True)
    layer.grad = None
    # L~ = (1/2, 4/4) -> r = (2/3, 4/3), target = 3 r^1.5 = (1.63, 4.62): same signs, now from r
    gradnorm.backward(losses(1.0, 4.0), [layer])
    assert gradnorm.weights["a"].grad.item() == pytest.approx(5.0)
    assert gradnorm.weights["b"].grad.item() == pytest.approx(-1.0)
    torch.testing.assert_close(layer.grad, torch.outer(heads["a"] + heads["b"], x))  # w = (1, 1)
    torch.optim.SGD(gradnorm.parameters(), lr=0.1).step()  # w = (0.5, 1.1)
    gradnorm.update({})
    assert [gradnorm.weights[t].item() for t in "ab"] == pytest.approx([0.625, 1.375])  # sum back to K


def test_gradnorm_restoring_force_uses_loss_ratios_to_initial_losses():
    gradnorm = build_weighting("gradnorm", ["a", "b"], {"alpha": 1.5})
    layer = nn.Parameter(torch.zeros(1, 1))

    def losses(ca, cb):  # equal gradient norms (1), so only the training rates r decide
        return {"a": ca + layer.sum(), "b": cb + layer.sum()}

    gradnorm.backward(losses(1.0, 4.0), [layer])
    gradnorm.zero_grad(set_to_none=True)
    # L~ = (.9, .5): a trains slower (r_a > 1, target_a > G_a) although its raw loss is lower
    gradnorm.backward(losses(0.9, 2.0), [layer])
    assert gradnorm.weights["a"].grad.item() == pytest.approx(-1.0)
    assert gradnorm.weights["b"].grad.item() == pytest.approx(1.0)


def test_gradnorm_renormalisation_keeps_the_sum_at_k_with_an_absent_task():
    gradnorm = build_weighting("gradnorm", ["a", "b", "c"])
    layer = nn.Parameter(torch.zeros(1, 2))
    x = torch.tensor([1.0, 2.0])
    gradnorm.backward({"a": 1.0 + (layer @ x).sum(), "c": 2.0 + 3 * (layer @ x).sum()}, [layer])
    torch.optim.SGD(gradnorm.parameters(), lr=0.3).step()
    gradnorm.update({})
    weights = {t: gradnorm.weights[t].item() for t in "abc"}
    # G = (sqrt 5, 3 sqrt 5), target = their mean 2 sqrt 5 (r = 1 at the first step): grad w = (-sqrt 5,
    # 3 sqrt 5); SGD gives w_a = 1 + 0.3 sqrt 5 and w_c = 1 - 0.9 sqrt 5 < 0, kept at 1e-6; both are
    # rescaled to their sum before the step, 2, and the absent b keeps its 1
    wa, wc = 1 + 0.3 * 5**0.5, 1e-6
    assert weights == pytest.approx({"a": 2 * wa / (wa + wc), "b": 1.0, "c": 2 * wc / (wa + wc)}, rel=1e-6)
    assert weights["b"] == 1.0


def test_famo_first_update_by_hand():
    famo = build_weighting("famo", ["a", "b"], {"gamma": 0.0})
    out = famo({"a": torch.tensor(1.0), "b": torch.tensor(1.0)})
    assert sum(float(w) for w in out.weights.values()) == pytest.approx(1.0)
    famo.update({"a": torch.tensor(0.5), "b": torch.tensor(0.9)})
    # delta = (log 2, log 1/.9), z = (.5, .5): d = z (delta - z.delta) = (+, -);
    # Adam's first step is -lr sign(d), so the task that improved more loses weight
    assert famo.logits.tolist() == pytest.approx([-0.025, 0.025], abs=1e-6)


def test_famo_logits_follow_torch_adam_with_weight_decay():
    famo = build_weighting("famo", ["a", "b", "c"], {"lr": 0.1, "gamma": 0.01})
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)  # FAMO keeps its state in float64
    adam = torch.optim.Adam([w], lr=0.1, weight_decay=0.01)
    torch.manual_seed(0)
    for _ in range(4):
        before, after = torch.rand(3, dtype=torch.float64) + 0.5, torch.rand(3, dtype=torch.float64) + 0.5
        combined = famo(dict(zip("abc", before)))
        z = torch.softmax(w, 0)
        effective = z / (before + 1e-8)  # d total / d L_i, normalised by c
        torch.testing.assert_close(torch.stack(list(combined.weights.values())), effective / effective.sum())
        famo.update(dict(zip("abc", after)))
        delta = (before + 1e-8).log() - (after + 1e-8).log()
        (d,) = torch.autograd.grad(torch.softmax(w, 0), w, grad_outputs=delta)
        w.grad = d
        adam.step()
        torch.testing.assert_close(famo.logits, w.detach(), rtol=1e-12, atol=1e-15)


def test_famo_resolves_a_loss_change_below_float32_resolution():
    famo = build_weighting("famo", ["a", "b"], {"gamma": 0.0})
    before = torch.tensor([5.0, 5.0])  # float32, as the trainer passes them
    after = torch.tensor([np.nextafter(np.float32(5.0), np.float32(0.0)), 5.0])  # a: one float32 step lower
    famo.update(dict(zip("ab", after)), before=dict(zip("ab", before)))
    # delta_a = log 5 - log(5 - 2^-21) ~ 9.5e-8 is below float32's spacing near log 5 (1.2e-7);
    # z = (.5, .5): grad = (delta_a / 4, -delta_a / 4), and Adam's first step is lr g / (|g| + eps)
    g = (math.log(5.0) - math.log(float(after[0]))) / 4
    step = 0.025 * g / (abs(g) + 1e-8)
    assert famo.logits.tolist() == pytest.approx([-step, step], rel=1e-9)


def test_famo_state_round_trips_exactly_in_float64(tmp_path):
    famo = build_weighting("famo", ["a", "b", "c"])
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        famo(dict(zip("abc", torch.rand(3, generator=gen) + 0.5)))
        famo.update(dict(zip("abc", torch.rand(3, generator=gen) + 0.5)))
    torch.save(famo.state_dict(), tmp_path / "famo.pt")
    restored = build_weighting("famo", ["a", "b", "c"])
    restored.load_state_dict(torch.load(tmp_path / "famo.pt"))
    for key, value in famo.state_dict().items():
        assert restored.state_dict()[key].dtype == value.dtype and torch.equal(restored.state_dict()[key], value)
    assert famo.logits.dtype == famo.exp_avg.dtype == famo.exp_avg_sq.dtype == torch.float64
    float32_state = {k: v.float() if v.is_floating_point() else v for k, v in famo.state_dict().items()}
    restored.load_state_dict(float32_state)  # a checkpoint from before the float64 state still loads
    assert restored.logits.dtype == torch.float64


def test_famo_absent_task_logit_and_moments_do_not_move():
    famo = build_weighting("famo", ["a", "b", "c"])
    famo({"a": torch.tensor(1.0), "c": torch.tensor(2.0)})
    famo.update({"a": torch.tensor(0.5), "c": torch.tensor(1.9)})
    assert famo.logits[1] == 0 and famo.exp_avg_sq[1] == 0 and famo.adam_steps.tolist() == [1, 0, 1]
    assert famo.post_step_losses


# --- absent tasks, every strategy on a tiny model -------------------------------------------------

def test_the_gradient_methods_offer_rep_grad():
    assert {"pcgrad", "cagrad", "mgda", "imtl", "nashmtl", "gradnorm"} <= set(REP_GRAD)
    assert REP_GRAD["mgda"] is True  # MGDA-UB


def variants():
    out = [(name, {}) for name in WEIGHTINGS.names()]
    return out + [(name, {"rep_grad": not default}) for name, default in REP_GRAD.items()]


@pytest.mark.parametrize("name, options", variants(), ids=lambda v: str(v))
def test_every_strategy_backward_gives_finite_grads(name, options):
    model, _, _, _ = run_step(name, ["a", "b"], ["a", "b"], options)
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def _per_task_entries(state, absent_index, absent_name):
    """State entries that belong to the absent task: ParameterDict keys, or column of a per-task buffer."""
    out = {}
    for key, value in state.items():
        if key.endswith(f".{absent_name}"):
            out[key] = value.clone()
        elif value.ndim >= 1 and value.shape[-1] == 3:
            out[key] = value[..., absent_index].clone()
    return out


@pytest.mark.parametrize("name, options", variants(), ids=lambda v: str(v))
def test_absent_task_is_skipped_and_its_state_does_not_drift(name, options):
    tasks = ["a", "b", "c"]
    torch.manual_seed(0)
    model, strategy = Tiny(tasks), build_weighting(name, tasks, options)
    optimizer = torch.optim.SGD([*model.parameters(), *strategy.parameters()], lr=0.1, momentum=0.9)

    def step(present, seed):
        optimizer.zero_grad(set_to_none=True)
        rep, losses = model.losses(present, seed)
        weights = strategy.backward(losses, list(model.shared.parameters()), rep)
        optimizer.step()
        strategy.update({t: v.detach() for t, v in model.losses(present, seed)[1].items()})
        strategy.end_epoch()
        return weights

    for seed in range(2):  # every task present: b's state and momentum become non-trivial
        step(tasks, seed)
    before = _per_task_entries(strategy.state_dict(), 1, "b")
    for seed in range(2, 5):
        weights = step(["a", "c"], seed)
        assert set(weights) == {"a", "c"} and all(math.isfinite(float(w)) for w in weights.values())
        assert model.heads["b"].weight.grad is None
        assert all(torch.isfinite(p.grad).all() for p in model.shared.parameters())
    after = _per_task_entries(strategy.state_dict(), 1, "b")
    for key in before:
        torch.testing.assert_close(after[key], before[key], equal_nan=True, msg=key)


@pytest.mark.parametrize("name", sorted(REP_GRAD))
def test_a_single_present_task_works(name):
    model, _, _, weights = run_step(name, ["a", "b"], ["b"])
    assert set(weights) == {"b"} and math.isfinite(float(weights["b"]))
    assert model.heads["a"].weight.grad is None


def test_learned_state_is_in_state_dict():
    tasks = ["a", "b"]
    keys = {name: set(build_weighting(name, tasks, opts).state_dict())
            for name, opts in [("famo", {}), ("dwa", {}), ("gradnorm", {}), ("nashmtl", {}),
                               ("imtl", {"loss_balance": True})]}
    assert {"logits", "exp_avg", "exp_avg_sq", "adam_steps"} <= keys["famo"]
    assert {"history", "epoch_sum", "epoch_count"} <= keys["dwa"]
    assert {"weights.a", "weights.b", "initial_losses"} <= keys["gradnorm"]
    assert {"alpha", "step"} <= keys["nashmtl"]
    assert {"loss_scales.a", "loss_scales.b"} <= keys["imtl"]


# --- representation gradients ----------------------------------------------------------------------

def test_rep_grad_backpropagates_the_combination_once_through_the_backbone():
    torch.manual_seed(0)
    model = Tiny(["a", "b"])
    rep, losses = model.losses(["a", "b"])
    build_weighting("cagrad", ["a", "b"], {"c": 0.0, "rep_grad": True}).backward(
        losses, list(model.shared.parameters()), rep)
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    rep, losses = model.losses(["a", "b"])
    # shared: grad of the mean loss; heads: each task's own unweighted gradient
    torch.autograd.backward(0.5 * (losses["a"] + losses["b"]), inputs=list(model.shared.parameters()),
                            retain_graph=True)
    torch.autograd.backward(losses["a"] + losses["b"], inputs=list(model.heads.parameters()))
    for n, p in model.named_parameters():
        torch.testing.assert_close(got[n], p.grad, msg=n)


def test_nashmtl_heads_get_alpha_weighted_gradients():
    options = {"rep_grad": True, "max_norm": 0.0}
    model, _, losses, weights = run_step("nashmtl", ["a", "b"], ["a", "b"], options)
    (own,) = torch.autograd.grad(losses["a"], model.heads["a"].weight)
    torch.testing.assert_close(model.heads["a"].weight.grad, weights["a"] * own)


def test_rep_grad_refuses_a_loss_that_bypasses_the_representation():
    model = Tiny(["a", "b"])
    rep, losses = model.losses(["a", "b"])
    losses["b"] = losses["b"] + model.shared[0].weight.square().sum()  # like a decoder on feature maps
    with pytest.raises(ValueError, match="rep_grad=False"):
        build_weighting("mgda", ["a", "b"]).backward(losses, list(model.shared.parameters()), rep)


# --- scale (AMP) and options ---------------------------------------------------------------------

@pytest.mark.parametrize("name, options", [
    ("pcgrad", {}), ("cagrad", {}), ("mgda", {"normalization": "loss+"}), ("imtl", {}),
    ("famo", {}), ("dwa", {}), ("rlw", {}),
])
def test_scale_equivariant_strategies_compose_with_grad_scaling(name, options):
    model, strategy = Tiny(["a", "b"]), build_weighting(name, ["a", "b"], options)
    grads = []
    for scale in (1.0, 1024.0):
        model.zero_grad(set_to_none=True)
        rep, losses = model.losses(["a", "b"])
        torch.manual_seed(0)
        strategy.backward({t: scale * v for t, v in losses.items()}, list(model.shared.parameters()), rep)
        grads.append(torch.cat([p.grad.reshape(-1) / scale for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-3, atol=1e-7)


def test_nashmtl_update_is_scale_invariant_hence_needs_unscaled_losses():
    g = torch.tensor([[1.0, 0.0], [0.5, 1.0]], dtype=torch.float64)
    small, _ = linear_backward("nashmtl", g, max_norm=0.0)
    big, _ = linear_backward("nashmtl", 1024 * g, max_norm=0.0)
    torch.testing.assert_close(small, big)


@pytest.mark.parametrize("name, options, match", [
    ("dwa", {"T": 0}, "T=0"), ("cagrad", {"c": -1}, "c=-1"), ("cagrad", {"rescale": 3}, "rescale"),
    ("mgda", {"normalization": "l1"}, "normalization"), ("nashmtl", {"update_every": 0}, "update_every"),
    ("nashmtl", {"max_norm": -1}, "max_norm"), ("famo", {"lr": 0}, "lr"), ("famo", {"gamma": -1}, "gamma"),
    ("gradnorm", {"alpha": -1}, "alpha"), ("pcgrad", {"rep_grad": "yes"}, "rep_grad"),
    ("imtl", {"loss_balance": 1}, "loss_balance"),
])
def test_bad_options_raise_clear_errors(name, options, match):
    with pytest.raises(ValueError, match=match):
        build_weighting(name, ["a", "b"], options)


# --- reference implementations --------------------------------------------------------------------

def libmtl_weighting(name):
    """LibMTL 1.1.5's weighting class; its package __init__ fails on current torchvision, so skip it."""
    if "LibMTL" not in sys.modules:
        spec = importlib.util.find_spec("LibMTL")
        if spec is None:
            pytest.skip("LibMTL not installed (pip install -r requirements-dev.txt)")
        package = types.ModuleType("LibMTL")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["LibMTL"] = package
    return getattr(importlib.import_module(f"LibMTL.weighting.{name}"), name)


def libmtl_backward(name, grads, **kwargs):
    theta = torch.zeros(grads.shape[1], requires_grad=True)

    class Shim(libmtl_weighting(name)):
        def get_share_params(self):
            return [theta]

        def zero_grad_share_params(self):
            theta.grad.zero_()

    method = Shim()
    method.task_num, method.device, method.rep_grad = len(grads), "cpu", False
    method.init_param()
    weights = method.backward(grads @ theta, **kwargs)
    return theta.grad, weights


@pytest.mark.parametrize("name, ours, kwargs, tasks", [
    ("PCGrad", ("pcgrad", {}), {}, 2),
    ("MGDA", ("mgda", {"rep_grad": False}), {"mgda_gn": "none"}, 3),
    ("IMTL", ("imtl", {}), {}, 3),
    ("CAGrad", ("cagrad", {"c": 0.4, "rescale": 1}), {"calpha": 0.4, "rescale": 1}, 3),  # LibMTL's needs 3
])
def test_combined_gradient_matches_libmtl(name, ours, kwargs, tasks):
    torch.manual_seed(3)
    grads = torch.randn(tasks, 12)
    if tasks == 2:
        grads[1] -= 2 * grads[0]  # make them conflict
        assert grads[0] @ grads[1] < 0
    reference, _ = libmtl_backward(name, grads.clone(), **kwargs)
    got, _ = linear_backward(ours[0], grads, **ours[1])
    # CAGrad: both solve the dual with SLSQP (ftol 1e-6), ours on the Gram matrix normalised
    # as in the official code, LibMTL's on the raw one, so they agree to the solver's tolerance.
    rtol, atol = (5e-3, 1e-3) if name == "CAGrad" else (1e-4, 1e-5)
    torch.testing.assert_close(got, reference, rtol=rtol, atol=atol)


@pytest.mark.parametrize("normalization", ["l2", "loss", "loss+"])
def test_mgda_normalised_weights_match_libmtl(normalization):
    torch.manual_seed(4)
    grads = torch.randn(3, 12)
    offsets = torch.tensor([1.0, 2.0, 3.0])  # loss values at theta = 0, for the "loss" normalisers
    theta = torch.zeros(12, requires_grad=True)

    class Shim(libmtl_weighting("MGDA")):
        def get_share_params(self):
            return [theta]

        def zero_grad_share_params(self):
            theta.grad.zero_()

    method = Shim()
    method.task_num, method.device, method.rep_grad = 3, "cpu", False
    reference = method.backward(grads @ theta + offsets, mgda_gn=normalization)
    losses = {f"t{i}": g @ theta + o for i, (g, o) in enumerate(zip(grads, offsets))}
    mgda = build_weighting("mgda", list(losses), {"normalization": normalization})
    weights = mgda.backward(losses, [theta])
    assert list(weights.values()) == pytest.approx(list(reference), abs=1e-4)


def torchjd_aggregator(name, **kwargs):
    aggregation = pytest.importorskip("torchjd.aggregation")
    return getattr(aggregation, name)(**kwargs)


@pytest.mark.parametrize("name, kwargs, ours", [
    ("MGDA", {"epsilon": 1e-9, "max_iters": 5000}, ("mgda", {"rep_grad": False})),
    ("IMTLG", {}, ("imtl", {})),
    ("CAGrad", {"c": 0.4}, ("cagrad", {"c": 0.4, "rescale": 0})),  # TorchJD does not rescale
    ("NashMTL", {"n_tasks": 3, "max_norm": 0.0}, ("nashmtl", {"max_norm": 0.0})),
])
def test_combined_gradient_matches_torchjd(name, kwargs, ours):
    torch.manual_seed(5)
    grads = torch.randn(3, 12, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cvxpy's "problem is not DPP" note
        reference = torchjd_aggregator(name, **kwargs)(grads)
    got, _ = linear_backward(ours[0], grads, **ours[1])
    # TorchJD's Frank-Wolfe, run to epsilon 1e-9, converges here (7e-8 relative of the exact MGDA point)
    rtol, atol = (1e-6, 1e-9) if name == "MGDA" else (2e-3, 1e-4)
    torch.testing.assert_close(got, reference, rtol=rtol, atol=atol)


@pytest.mark.parametrize("seed", range(6))
def test_pcgrad_matches_torchjd_with_the_same_random_order(seed):
    aggregator = torchjd_aggregator("PCGrad")
    torch.manual_seed(6)
    grads = torch.randn(4, 12, dtype=torch.float64)
    grads[1] -= grads[0]
    grads[3] -= 2 * grads[2]
    # g_1^PC . g_1 < 0 after projecting on g_2 then g_3: the paper never projects a task on itself
    grads[:3, :2] = torch.tensor([[1.0, 0.0], [-1.0, 0.1], [-1.0, -1.0]], dtype=torch.float64)
    grads[:3, 2:] = 0
    torch.manual_seed(seed)
    reference = aggregator(grads)
    torch.manual_seed(seed)
    got, _ = linear_backward("pcgrad", grads)
    torch.testing.assert_close(got, reference)
