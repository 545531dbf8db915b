"""Real ``torchrun --nproc_per_node=2`` runs on CPU with the gloo backend."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from foodmtl.cli import main
from foodmtl.engine.checkpoint import load_checkpoint
from foodmtl.tracking.local import read_jsonl

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"
BN_STATS = {"running_mean", "running_var", "num_batches_tracked"}
CORRUPT = 3      # unreadable training images in the ddp_run data
EPOCHS = 2


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def with_corrupt_training_images(root: Path, folder: Path, n: int) -> Path:
    """A copy of SynthFood whose first ``n`` training images are truncated JPEGs."""
    copy = folder / "synthfood"
    shutil.copytree(root, copy)
    for entry in (copy / "food101" / "meta" / "train.txt").read_text().split()[:n]:
        image = copy / "food101" / "images" / f"{entry}.jpg"
        image.write_bytes(image.read_bytes()[:200])
    return copy


STRATEGIES = ["famo", "pcgrad"]


@pytest.fixture(scope="module")
def ddp_run(synthfood_root, tmp_path_factory):
    """One torchrun launch (tests/ddp_worker.py), its jobs in turn: the loss-level run, 2 ranks x 3
    batches of 12 = the 72 training images once per epoch (no padding, none dropped); a 2-rank
    ``foodmtl eval`` of its last.pt; then a 4-step run of each gradient-level STRATEGIES under tmp/<name>."""
    tmp = tmp_path_factory.mktemp("ddp")
    data = with_corrupt_training_images(synthfood_root, tmp, CORRUPT)
    ckpt = tmp / "runs" / "synthfood-tiny" / "ddp" / "checkpoints" / "last.pt"
    jobs = [[str(TINY), str(tmp), f"data.root={data}", f"output_dir={tmp}/runs", "run=ddp", f"train.epochs={EPOCHS}",
             "weighting.name=uncertainty", "data.batch_size=12"],
            ["foodmtl", "eval", str(ckpt), "--cpu", "--json", str(tmp / "ddp_eval.json")]]
    for strategy in STRATEGIES:
        (tmp / strategy).mkdir()
        jobs.append([str(TINY), str(tmp / strategy), f"data.root={synthfood_root}", f"output_dir={tmp / strategy}/runs",
                     "run=ddp", "train.max_steps=4", f"weighting.name={strategy}", "tracking.wandb=disabled",
                     "data.limit=40"])
    torchrun(str(ROOT / "tests" / "ddp_worker.py"), *[arg for job in jobs for arg in [";", *job]][1:])
    return tmp


def eval_of(checkpoint: Path, out: Path, *overrides: str) -> dict:
    """``foodmtl eval`` in one process."""
    assert main(["eval", str(checkpoint), *overrides, "--cpu", "--json", str(out)]) == 0
    return json.loads(out.read_text())


def assert_reported_metrics_are_the_saved_models(run: Path, tmp_path: Path) -> None:
    """summary.json and metrics.jsonl report exactly what a 1-process eval of last.pt / best.pt gives
    (best.pt's on the test split too), and best.pt is the first evaluation with the highest train.best_metric."""
    evals = [{k.removeprefix("eval/"): v for k, v in r.items() if k.startswith("eval/")} | {"step": r["step"]}
             for r in read_jsonl(run / "metrics.jsonl") if "eval/dish/top1" in r]
    last = eval_of(run / "checkpoints" / "last.pt", tmp_path / "last.json")
    assert_same_scores(json.loads((run / "summary.json").read_text())["final"], last)
    assert_same_scores({k: v for k, v in evals[-1].items() if k != "step"}, last)
    best_step = load_checkpoint(run / "checkpoints" / "best.pt")["step"]
    top = max(e["dish/top1"] for e in evals)
    assert best_step == next(e["step"] for e in evals if e["dish/top1"] == top)
    best = eval_of(run / "checkpoints" / "best.pt", tmp_path / "best.json")
    assert_same_scores({k: v for k, v in next(e for e in evals if e["step"] == best_step).items() if k != "step"}, best)
    tested = eval_of(run / "checkpoints" / "best.pt", tmp_path / "test.json", "data.eval_split=test")
    assert_same_scores(json.loads((run / "summary.json").read_text())["test"], tested)


def assert_same_scores(reported: dict, evaluated: dict) -> None:
    """Metrics exactly; the eval losses to float32 rounding: they are continuous, and a sample's
    logits differ in the last bits with the batch it is in (2 ranks batch the eval set differently)."""
    losses = [k for k in evaluated if k.rsplit("/", 1)[-1] == "loss"]
    assert {k: v for k, v in reported.items() if k not in losses} == {k: v for k, v in evaluated.items()
                                                                       if k not in losses}
    assert {k: reported[k] for k in losses} == pytest.approx({k: evaluated[k] for k in losses}, rel=1e-5)


def assert_ranks_identical(folder):
    r0 = torch.load(folder / "rank0.pt", weights_only=True)
    r1 = torch.load(folder / "rank1.pt", weights_only=True)
    for key, value in r0["objective"].items():
        if key.rsplit(".", 1)[-1] in BN_STATS:  # rank-local; DDP re-broadcasts rank 0's each forward
            continue
        assert torch.equal(value, r1["objective"][key]), key
    for pid, state in r0["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(value, r1["optimizer"]["state"][pid][name]), (pid, name)
    return r0["objective"]


def test_parameters_and_optimizer_state_identical_across_ranks(ddp_run):
    state = assert_ranks_identical(ddp_run)
    assert not torch.equal(state["weighting.log_vars.dish"], torch.tensor(0.0))  # it did learn


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_state_identical_across_ranks_and_metrics_are_the_saved_models(strategy, ddp_run, tmp_path):
    """FAMO keeps buffers updated after the step (and re-runs a forward outside DDP); PCGrad
    averages gradients outside DDP's hooks."""
    state = assert_ranks_identical(ddp_run / strategy)
    if strategy == "famo":
        assert not torch.equal(state["weighting.logits"], torch.zeros(4))  # it did learn
    assert_reported_metrics_are_the_saved_models(ddp_run / strategy / "runs" / "synthfood-tiny" / "ddp", tmp_path)


def test_exactly_one_wandb_run(ddp_run):
    assert len(list((ddp_run / "runs" / "synthfood-tiny" / "ddp" / "wandb").glob("offline-run-*"))) == 1


def test_distributed_eval_equals_single_process_eval(ddp_run, tmp_path):
    ckpt = ddp_run / "runs" / "synthfood-tiny" / "ddp" / "checkpoints" / "last.pt"
    assert main(["eval", str(ckpt), "--cpu", "--json", str(tmp_path / "single.json")]) == 0
    ddp = json.loads((ddp_run / "ddp_eval.json").read_text())
    single = json.loads((tmp_path / "single.json").read_text())
    assert ddp == pytest.approx(single, abs=1e-6)


def test_loss_level_run_reports_exactly_what_its_checkpoints_score(ddp_run, tmp_path):
    assert_reported_metrics_are_the_saved_models(ddp_run / "runs" / "synthfood-tiny" / "ddp", tmp_path)


def test_counts_in_the_summary_are_sums_over_ranks(ddp_run):
    run = ddp_run / "runs" / "synthfood-tiny" / "ddp"
    assert json.loads((run / "summary.json").read_text())["skipped_images"] == CORRUPT * EPOCHS
    evals = [r for r in read_jsonl(run / "metrics.jsonl") if "data/skipped_train" in r]
    assert [r["data/skipped_train"] for r in evals] == [CORRUPT * (e + 1) for e in range(EPOCHS)]
