"""The optimizer step: absent tasks, gradient accumulation, every strategy through the runner."""
import copy

import pytest
import torch

from foodmtl.config import Config, ModelConfig
from foodmtl.data.dataset import Batch
from foodmtl.engine.distributed import DistInfo
from foodmtl.engine.objective import Objective
from foodmtl.engine.step import StepRunner
from foodmtl.models.multitask import build_model
from foodmtl.tasks import IGNORE_INDEX, SEG_IGNORE, TaskSpec
from foodmtl.weighting import WEIGHTINGS, build_weighting

TASKS = [TaskSpec("dish", "multiclass", ("a", "b", "c")), TaskSpec("cuisine", "multiclass", ("x", "y")),
         TaskSpec("ingredients", "multilabel", ("p", "q", "r", "s"))]
SEG = TaskSpec("segmentation", "segmentation", ("bg", "rice", "egg"))
CPU = DistInfo(0, 1, 0, torch.device("cpu"))


def make_batch(n: int, seed: int, absent: tuple[str, ...] = (), seg: bool = False, size: int = 32) -> Batch:
    g = torch.Generator().manual_seed(seed)
    targets = {"dish": torch.randint(0, 3, (n,), generator=g), "cuisine": torch.randint(0, 2, (n,), generator=g),
               "ingredients": torch.randint(0, 2, (n, 4), generator=g).float()}
    if seg:
        targets["segmentation"] = torch.randint(0, 3, (n, size, size), generator=g)
    for task in absent:
        targets[task] = torch.full_like(targets[task], SEG_IGNORE if task == "segmentation" else IGNORE_INDEX)
    present = [t for t in targets if t not in absent]
    return Batch(torch.randn(n, 3, size, size, generator=g), targets, present, [])


def runner(strategy: str = "uniform", backbone: str = "test_vit", seg: bool = False, options=None,
           accum: int = 1, lr: float = 1e-2, sgd: bool = False, loss_scale: float = 0.0) -> StepRunner:
    torch.manual_seed(0)
    cfg = Config()
    cfg.model = ModelConfig(backbone=backbone, channels_last=False, decoder="fpn")
    cfg.train.accum_steps = accum
    tasks = TASKS + [SEG] if seg else TASKS
    model = build_model(cfg.model, tasks)
    objective = Objective(model, build_weighting(strategy, [t.name for t in tasks], options))
    optimizer = (torch.optim.SGD(objective.parameters(), lr=lr) if sgd
                 else torch.optim.AdamW(objective.parameters(), lr=lr, weight_decay=0.0))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=loss_scale or 1.0, enabled=loss_scale > 0)
    return StepRunner(cfg, objective, None, optimizer, scheduler, scaler, CPU)


def snapshot(params) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("strategy", ["uniform", "uncertainty", "dwa", "famo", "pcgrad", "gradnorm"])
def test_absent_task_head_and_strategy_weights_do_not_move(strategy):
    r = runner(strategy, backbone="resnet10t")
    r.run([make_batch(4, 0)], 0)  # every task present: Adam now has momentum for each
    frozen = snapshot(r.objective.task_parameters("cuisine"))
    moving = snapshot(r.objective.task_parameters("dish"))
    for step in range(1, 4):
        result = r.run([make_batch(4, step, absent=("cuisine",))], step)
        assert "cuisine" not in result.losses and all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    after = r.objective.task_parameters("cuisine")
    assert all(torch.equal(a, b) for a, b in zip(frozen, after))
    assert not all(torch.equal(a, b) for a, b in zip(moving, r.objective.task_parameters("dish")))


def test_uncertainty_log_variance_of_an_absent_task_stays_put():
    r = runner("uncertainty", backbone="resnet10t")
    r.run([make_batch(4, 0)], 0)
    before = r.objective.weighting.log_vars["cuisine"].item()
    assert before != 0.0
    for step in range(1, 4):
        r.run([make_batch(4, step, absent=("cuisine",))], step)
    assert r.objective.weighting.log_vars["cuisine"].item() == before


def test_absent_segmentation_gives_finite_loss_and_zero_decoder_gradient():
    r = runner("uniform", backbone="resnet10t", seg=True)
    batch = make_batch(2, 0, absent=("segmentation",), seg=True)
    out = r.objective(batch.images, batch.targets, batch.present)
    assert torch.isfinite(out.total) and "segmentation" not in out.present
    out.total.backward()
    decoder_grads = [p.grad for p in r.objective.model.decoder.parameters()]
    assert all(g is None or torch.count_nonzero(g) == 0 for g in decoder_grads)
    assert any(p.grad is not None and torch.count_nonzero(p.grad) for p in r.objective.model.heads.parameters())


def test_two_accumulated_micro_batches_equal_one_batch_of_both():
    """LayerNorm backbone (no batch statistics), equal label counts, SGD: the steps must match."""
    whole, accum = runner(backbone="test_vit", sgd=True), runner(backbone="test_vit", accum=2, sgd=True)
    start = snapshot(whole.objective.parameters())
    a, b = make_batch(4, 1), make_batch(4, 2)
    both = Batch(torch.cat([a.images, b.images]), {k: torch.cat([a.targets[k], b.targets[k]]) for k in a.targets},
                 a.present, [])
    whole.run([both], 0)
    accum.run([a, b], 0)
    for p0, p, q in zip(start, whole.objective.parameters(), accum.objective.parameters()):
        torch.testing.assert_close(q - p0, p - p0, atol=1e-7, rtol=1e-4)
    assert not all(torch.equal(p0, p) for p0, p in zip(start, whole.objective.parameters()))


@pytest.mark.parametrize("name", sorted(WEIGHTINGS.names()))
def test_every_strategy_trains_through_the_runner_with_a_partial_batch(name):
    options = {"weights": {"dish": 1.0, "cuisine": 0.5, "ingredients": 2.0}} if name == "manual" else None
    r = runner(name, backbone="resnet10t", options=options)
    first = copy.deepcopy(r.objective.model.backbone.state_dict())
    for step in range(3):
        absent = ("ingredients",) if step == 1 else ()
        result = r.run([make_batch(4, step, absent=absent)], step)
        assert set(result.losses) == {"dish", "cuisine", "ingredients"} - set(absent)
        assert all(torch.isfinite(torch.tensor(w)) for w in result.weights.values())
    moved = r.objective.model.backbone.state_dict()
    assert any(not torch.equal(first[k], moved[k]) for k in first if first[k].is_floating_point())


def test_famo_learns_from_the_losses_re_evaluated_after_the_step():
    """First Adam step on FAMO's logits moves each by exactly lr (sign of its gradient)."""
    r = runner("famo", backbone="resnet10t")
    r.run([make_batch(4, 0)], 0)
    logits = r.objective.weighting.logits
    torch.testing.assert_close(logits.abs(), torch.full((3,), 0.025, dtype=torch.float64), rtol=1.3e-6, atol=1e-5)
    assert logits.sum().abs() < 0.03  # softmax gradient directions sum to zero: not all the same sign


# RLW draws its weights from the global RNG, so two runs in a row draw different ones.
EQUIVARIANT = sorted(n for n in WEIGHTINGS.names() if WEIGHTINGS.get(n).scale_equivariant and n != "rlw")


@pytest.mark.parametrize("strategy", EQUIVARIANT)
def test_a_loss_scaler_changes_nothing_once_gradients_are_unscaled(strategy):
    """fp16's GradScaler multiplies the losses by 2^k: gradient-level strategies must be
    scale-equivariant for scaler.step's unscale to give the unscaled update."""
    plain, scaled = runner(strategy, backbone="test_vit", sgd=True), runner(strategy, backbone="test_vit", sgd=True,
                                                                              loss_scale=2.0**12)
    start = snapshot(plain.objective.parameters())
    plain.run([make_batch(4, 0)], 0)
    scaled.run([make_batch(4, 0)], 0)
    for p0, p, q in zip(start, plain.objective.parameters(), scaled.objective.parameters()):
        torch.testing.assert_close(q - p0, p - p0, atol=1e-6, rtol=1e-3)
    # both runs moved the shared backbone and every head well beyond the tolerance (a step that
    # changed nothing in either run would pass the comparison above)
    for run in (plain, scaled):
        moved = dict(zip([n for n, _ in run.objective.named_parameters()],
                         (float((p - p0).abs().max()) for p0, p in zip(start, run.objective.parameters()))))
        parts = ["model.backbone.", *(f"model.heads.{t}." for t in ("dish", "cuisine", "ingredients"))]
        assert all(max(v for n, v in moved.items() if n.startswith(part)) > 1e-4 for part in parts), moved


@pytest.mark.parametrize("strategy, options", [("uniform", None), ("manual", {"weights": {"dish": 3.0}}),
                                               ("pcgrad", None)])
def test_the_logged_objective_is_the_weighted_sum_of_the_task_losses(strategy, options):
    """train/objective: manual weights scale it; uniform equals the plain sum; for a gradient-level
    strategy the weights are the coefficients of the combined shared gradient."""
    result = runner(strategy, backbone="resnet10t", options=options).run([make_batch(4, 0)], 0)
    expected = sum(result.weights.get(t, 1.0) * v for t, v in result.losses.items())
    assert result.objective == pytest.approx(expected)
    if strategy == "uniform":
        assert result.objective == pytest.approx(result.total)
    if strategy == "manual":
        assert result.weights["dish"] == 3.0
        assert result.objective == pytest.approx(result.total + 2 * result.losses["dish"])
    if strategy == "pcgrad":
        assert set(result.weights) == set(result.losses)
