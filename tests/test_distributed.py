"""Real ``torchrun --nproc_per_node=2`` runs on CPU with the gloo backend."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from foodmtl.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"
BN_STATS = {"running_mean", "running_var", "num_batches_tracked"}


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def ddp_run(synthfood_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    torchrun(str(ROOT / "tests" / "ddp_worker.py"), str(TINY), str(tmp), f"data.root={synthfood_root}",
             f"output_dir={tmp}/runs", "run=ddp", "train.epochs=2", "weighting.name=uncertainty")
    return tmp


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


@pytest.mark.parametrize("strategy", ["famo", "pcgrad"])
def test_strategy_state_identical_across_ranks(strategy, synthfood_root, tmp_path):
    """FAMO keeps buffers updated after the step; PCGrad averages gradients outside DDP's hooks."""
    torchrun(str(ROOT / "tests" / "ddp_worker.py"), str(TINY), str(tmp_path), f"data.root={synthfood_root}",
             f"output_dir={tmp_path}/runs", "run=ddp", "train.max_steps=4", f"weighting.name={strategy}",
             "tracking.wandb=disabled", "data.limit=40")
    state = assert_ranks_identical(tmp_path)
    if strategy == "famo":
        assert not torch.equal(state["weighting.logits"], torch.zeros(4))  # it did learn


def test_exactly_one_wandb_run(ddp_run):
    assert len(list((ddp_run / "runs" / "synthfood-tiny" / "ddp" / "wandb").glob("offline-run-*"))) == 1


def test_distributed_eval_equals_single_process_eval(ddp_run, tmp_path, synthfood_root):
    ckpt = ddp_run / "runs" / "synthfood-tiny" / "ddp" / "checkpoints" / "last.pt"
    torchrun("-m", "foodmtl", "eval", str(ckpt), "--cpu", "--json", str(tmp_path / "ddp.json"))
    assert main(["eval", str(ckpt), "--cpu", "--json", str(tmp_path / "single.json")]) == 0
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    single = json.loads((tmp_path / "single.json").read_text())
    assert ddp == pytest.approx(single, abs=1e-6)
