"""Gradient diagnostics (engine/diagnostics.py): hand-checked cosines and norms, conflict rates between
evaluations, training bit-identical with them on, 2 gloo ranks = 1 process, the run's records and plot.

Run as a script under torchrun (``torchrun --nproc_per_node=2 tests/test_diagnostics.py OUT``), it is the
worker of test_two_ranks_report_what_one_process_reports_on_the_same_global_batch.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from foodmtl.analysis.diagnostics import diagnostics_figure  # noqa: E402
from foodmtl.analysis.runs import Run  # noqa: E402
from foodmtl.cli import main  # noqa: E402
from foodmtl.config import Config, ModelConfig  # noqa: E402
from foodmtl.data.dataset import Batch  # noqa: E402
from foodmtl.engine.diagnostics import GradDiagnostics  # noqa: E402
from foodmtl.engine.distributed import DistInfo  # noqa: E402
from foodmtl.engine.objective import Objective  # noqa: E402
from foodmtl.engine.step import StepRunner  # noqa: E402
from foodmtl.errors import ConfigError  # noqa: E402
from foodmtl.models.multitask import build_model  # noqa: E402
from foodmtl.tasks import TaskSpec  # noqa: E402
from foodmtl.tracking.local import read_jsonl  # noqa: E402
from foodmtl.weighting import build_weighting  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"
CPU = DistInfo(0, 1, 0, torch.device("cpu"))
TASKS = [TaskSpec("dish", "multiclass", ("a", "b", "c")), TaskSpec("cuisine", "multiclass", ("x", "y")),
         TaskSpec("ingredients", "multilabel", ("p", "q", "r", "s"))]
SEG = TaskSpec("segmentation", "segmentation", ("bg", "rice", "egg"))


# ---- hand-checked -------------------------------------------------------------------------------------

def linear_heads(w_b: tuple[float, float]):
    """R = X W (4 x 2) with the rows of X averaging x̄ = (1, 2, 2); L_a = mean(R w_a), w_a = (1, 0);
    L_b = mean(R w_b). dL/dR has every row w / 4, so ||g||_R = ||w|| / 2 and cos = cos(w_a, w_b);
    dL/dW = x̄ w^T, so ||g||_W = ||x̄|| ||w|| = 3 ||w|| with the same cosine."""
    x = torch.tensor([[1.0, 2.0, 2.0], [0.0, 1.0, 3.0], [2.0, 3.0, 1.0], [1.0, 2.0, 2.0]])
    weight = torch.nn.Parameter(torch.randn(3, 2))
    rep = x @ weight
    losses = [(rep @ torch.tensor(w)).mean() for w in ((1.0, 0.0), w_b)]
    return weight, rep, losses


def test_two_linear_heads_on_a_fixed_feature_give_the_hand_computed_cosine_and_norms():
    weight, rep, (la, lb) = linear_heads((-3.0, 4.0))  # cos = -3/5; ||w_b|| = 5
    diag = GradDiagnostics(["a", "b"], 1, True, CPU)
    window = diag.window([weight])
    window.add([0, 1], [8.0 * la, 8.0 * lb], rep, 8.0)  # as a GradScaler with scale 8 hands them over
    got = diag.record(window)
    assert got == pytest.approx({"diag/gradnorm/a": 0.5, "diag/gradnorm/b": 2.5, "diag/cos/a|b": -0.6,
                                 "diag/shared/gradnorm/a": 3.0, "diag/shared/gradnorm/b": 15.0,
                                 "diag/shared/cos/a|b": -0.6}, rel=1e-6)
    assert weight.grad is None  # nothing written into .grad


def test_a_task_absent_from_the_step_gets_no_norm_and_no_cosine():
    _, rep, (la, _) = linear_heads((0.0, 1.0))
    diag = GradDiagnostics(["a", "b"], 1, False, CPU)
    window = diag.window([])
    window.add([0], [la], rep, 1.0)
    assert diag.record(window) == pytest.approx({"diag/gradnorm/a": 0.5})


def test_conflict_rate_and_heatmap_cover_the_steps_since_the_last_evaluation():
    diag = GradDiagnostics(["a", "b"], 2, False, CPU)
    assert [diag.due(s) for s in range(4)] == [False, True, False, True]
    assert GradDiagnostics(["a", "b"], 0, False, CPU).due(0) is False          # 0: off
    for w_b in ((-1.0, 0.0), (-1.0, 1.0), (1.0, 1.0)):                       # cos -1, -1/√2, +1/√2
        _, rep, losses = linear_heads(w_b)
        window = diag.window([])
        window.add([0, 1], losses, rep, 1.0)
        diag.record(window)
    assert diag.intervals["representation"].mean()[0, 1] == pytest.approx(-1 / 3)  # the heatmap's a|b cell
    wandb = FakeWandb()
    assert diag.at_evaluation(wandb, 6) == pytest.approx({"diag/conflict/a|b": 2 / 3, "diag/diagnosed_steps": 3})
    (key, (image,), step), = wandb.logged
    assert key == "diag/cos_heatmap" and step == 6 and "3 step(s) to step 6" in image._caption
    assert diag.at_evaluation(wandb, 8) == {} and len(wandb.logged) == 1      # a new interval


class FakeWandb:
    run = object()

    def __init__(self):
        self.logged = []

    def log_images(self, key, images, step):
        self.logged.append((key, images, step))


# ---- through the step runner ----------------------------------------------------------------------------

def make_batch(n: int, seed: int, seg: bool = False, size: int = 32) -> Batch:
    g = torch.Generator().manual_seed(seed)
    targets = {"dish": torch.randint(0, 3, (n,), generator=g), "cuisine": torch.randint(0, 2, (n,), generator=g),
               "ingredients": torch.randint(0, 2, (n, 4), generator=g).float()}
    if seg:
        targets["segmentation"] = torch.randint(0, 3, (n, size, size), generator=g)
    return Batch(torch.randn(n, 3, size, size, generator=g), targets, list(targets), [])


def runner(strategy: str, every: int, shared: bool = False, backbone: str = "resnet10t", seg: bool = False,
           accum: int = 1, ddp_info: DistInfo | None = None) -> StepRunner:
    torch.manual_seed(0)
    cfg = Config()
    cfg.model = ModelConfig(backbone=backbone, channels_last=False, decoder="fpn")
    cfg.train.accum_steps = accum
    cfg.train.grad_diagnostics_every, cfg.train.grad_diagnostics_shared = every, shared
    tasks = TASKS + [SEG] if seg else TASKS
    objective = Objective(build_model(cfg.model, tasks), build_weighting(strategy, [t.name for t in tasks], {}))
    ddp = torch.nn.parallel.DistributedDataParallel(objective) if ddp_info else None
    optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return StepRunner(cfg, objective, ddp, optimizer, scheduler, scaler, ddp_info or CPU)


@pytest.mark.parametrize("strategy", ["uniform", "uncertainty", "pcgrad", "famo"])
def test_training_is_bit_identical_with_diagnostics_on(strategy):
    """Loss-level and gradient-level strategies, 2 accumulated micro-batches, both spaces, every step."""
    runs = {every: runner(strategy, every, shared=True, accum=2) for every in (0, 1)}
    for every, r in runs.items():
        torch.manual_seed(1)  # PCGrad draws its projection order from torch's generator
        for step in range(3):
            result = r.run([make_batch(4, 2 * step), make_batch(4, 2 * step + 1)], step)
            assert bool(result.diagnostics) == bool(every)
    off, on = (list(runs[e].objective.state_dict().values()) for e in (0, 1))
    assert all(torch.equal(a, b) for a, b in zip(off, on))
    assert "diag/shared/cos/dish|cuisine" in result.diagnostics


def test_a_loss_that_misses_the_representation_shows_only_on_the_shared_parameters():
    result = runner("uniform", 1, shared=True, seg=True).run([make_batch(2, 0, seg=True)], 0)
    assert "diag/gradnorm/dish" in result.diagnostics and "diag/gradnorm/segmentation" not in result.diagnostics
    assert "diag/shared/gradnorm/segmentation" in result.diagnostics
    assert "diag/shared/cos/dish|segmentation" in result.diagnostics


def global_batches(rank: int, world: int) -> list[Batch]:
    """Two micro-batches of a global batch of 8; rank r of ``world`` gets its slice of each."""
    out = []
    for seed in (0, 1):
        whole = make_batch(8, seed)
        rows = slice(rank * 8 // world, (rank + 1) * 8 // world)
        out.append(Batch(whole.images[rows], {k: v[rows] for k, v in whole.targets.items()}, whole.present, []))
    return out


@pytest.mark.slow
def test_two_ranks_report_what_one_process_reports_on_the_same_global_batch(tmp_path):
    """LayerNorm backbone (no batch statistics), every label present: the 2-rank objective is the 1-process one."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__,
           str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for strategy in DDP_STRATEGIES:
        ranks = [json.loads((tmp_path / f"{strategy}-rank{r}.json").read_text()) for r in (0, 1)]
        assert ranks[0] == ranks[1] and "diag/shared/cos/dish|cuisine" in ranks[0]
        single = runner(strategy, 1, shared=True, backbone="test_vit", accum=2).run(global_batches(0, 1), 0)
        assert ranks[0] == pytest.approx(single.diagnostics, rel=1e-5, abs=1e-7)


# uniform's last micro-batch runs DDP's synchronised backward after the diagnosis; PCGrad's run under no_sync
DDP_STRATEGIES = ("uniform", "pcgrad")


def ddp_worker(out: Path) -> None:
    from foodmtl.engine.distributed import cleanup, init_distributed

    info = init_distributed("cpu")
    for strategy in DDP_STRATEGIES:
        result = runner(strategy, 1, shared=True, backbone="test_vit", accum=2, ddp_info=info).run(
            global_batches(info.rank, info.world), 0)
        (out / f"{strategy}-rank{info.rank}.json").write_text(json.dumps(result.diagnostics))
    cleanup()


# ---- a run: metrics.jsonl, W&B, foodmtl plot ---------------------------------------------------------------

@pytest.mark.slow
def test_a_run_logs_diagnostics_and_conflicts_and_plot_draws_them(synthfood_root, tmp_path):
    import wandb_records

    assert main(["train", str(TINY), f"data.root={synthfood_root}", f"output_dir={tmp_path}", "run=diag",
                 "train.epochs=2", "train.grad_diagnostics_every=2", "data.limit=64"]) == 0
    run = tmp_path / "synthfood-tiny" / "diag"
    records = read_jsonl(run / "metrics.jsonl")
    diagnosed = [r for r in records if "diag/cos/dish|category" in r]
    assert diagnosed and all(r["step"] % 2 == 0 for r in diagnosed)
    evals = [r for r in records if "eval/dish/top1" in r]
    assert len(evals) == 2 and all("diag/conflict/dish|category" in r for r in evals)
    first = [r for r in diagnosed if r["step"] <= evals[0]["step"]]
    negative = sum(r["diag/cos/dish|category"] < 0 for r in first)
    assert evals[0]["diag/conflict/dish|category"] == pytest.approx(negative / len(first))
    assert evals[0]["diag/diagnosed_steps"] == len(first)
    logged = wandb_records.history(wandb_records.segments(run)[-1])
    heatmaps = [r for r in logged if r.get("diag/cos_heatmap._type") == "images/separated"]
    assert [r["step"] for r in heatmaps] == [e["step"] for e in evals]
    assert any("diag/cos/dish|category" in r for r in logged)
    assert main(["plot", str(tmp_path), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "synthfood-tiny-diagnostics.png").stat().st_size > 0


def diag_runs() -> list[Run]:
    """Two methods x two seeds: cosines at steps 2 and 4, a conflict rate at the evaluation of epoch 0."""
    cos = {("pcgrad", 0): (-0.2, 0.4), ("pcgrad", 1): (-0.4, 0.2), ("uniform", 0): (0.5, 0.1), ("uniform", 1): (0.3, 0.3)}
    return [Run(f"{m}-s{seed}", m, "g", seed, {}, {},
                [{"step": 2, "diag/cos/dish|mass": c[0]}, {"step": 4, "diag/cos/dish|mass": c[1]},
                 {"step": 4, "epoch": 0, "eval/dish/top1": 0.5, "diag/conflict/dish|mass": 0.5 * (c[0] < 0)}], "-")
            for (m, seed), c in cos.items()]


def test_the_plot_panel_draws_the_seed_mean_cosine_by_step_and_the_conflict_rate_by_epoch():
    fig = diagnostics_figure(diag_runs(), smooth=1)
    cos_ax, conflict_ax = fig.axes[:2]
    assert cos_ax.get_title() == "dish|mass: gradient cosine" and conflict_ax.get_xlabel() == "epoch"
    lines = {line.get_label(): line for line in cos_ax.lines if not line.get_label().startswith("_")}
    np.testing.assert_allclose(lines["pcgrad"].get_ydata(), [-0.3, 0.3])
    np.testing.assert_allclose(lines["uniform"].get_xdata(), [2, 4])
    assert [tuple(line.get_ydata()) for line in cos_ax.lines if line.get_label().startswith("_")] == [(0.0, 0.0)]
    rates = {line.get_label(): tuple(line.get_ydata()) for line in conflict_ax.lines}
    assert rates == {"pcgrad": (50.0,), "uniform": (0.0,)}
    smoothed = diagnostics_figure(diag_runs(), smooth=2).axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(smoothed, [-0.3, 0.0])                  # rolling mean over 2 diagnosed steps
    with pytest.raises(ConfigError, match="grad_diagnostics_every"):
        diagnostics_figure([Run("u", "uniform", "g", 0, {}, {}, [{"step": 1, "train/loss": 1.0}], "-")])


def test_the_step_benchmark_prints_the_diagnostics_rows_and_their_overhead_at_the_cadence():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "step.py"), "--backbone", "resnet10t", "--batch",
                           "2", "--size", "32", "--steps", "1", "--warmup", "0", "--threads", "1", "--diagnostics", "10"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| multi-task (4 heads) + gradient diagnostics |" in proc.stdout
    assert "| multi-task (4 heads) + diagnostics on the backbone's parameters |" in proc.stdout
    assert "per step at train.grad_diagnostics_every=10" in proc.stdout


def test_a_negative_cadence_is_one_error_line(tmp_path, capsys):
    assert main(["train", str(TINY), f"output_dir={tmp_path}", "train.grad_diagnostics_every=-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: train.grad_diagnostics_every=-1 must be >= 0 (0: off)"]


if __name__ == "__main__":
    ddp_worker(Path(sys.argv[1]))
