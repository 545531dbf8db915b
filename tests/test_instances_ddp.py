"""The instances task under a real ``torchrun --nproc_per_node=2`` (CPU, gloo)."""
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
CONFIG = ROOT / "experiments" / "synthfood" / "instances.yaml"
SMALL = {"fpn_channels": 32, "box_head_dim": 64, "mask_head_layers": 1, "anchor_scale": 4, "proposals": 100,
         "rois_per_image": 64, "separate_losses": "true"}
BN_STATS = {"running_mean", "running_var", "num_batches_tracked"}


def test_two_ranks_stay_identical_and_score_each_eval_image_once(synthfood_root, tmp_path):
    """Separate instance losses under uncertainty weighting: both ranks end with the same weights and
    optimizer state; the run's COCO AP (detections gathered from both ranks) equals a 1-process eval."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    options = [f"task_options.instances.{k}={v}" for k, v in SMALL.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "tests" / "ddp_worker.py"), str(CONFIG), str(tmp_path), f"data.root={synthfood_root}",
           f"output_dir={tmp_path}/runs", "run=ddp", "tasks=[dish,instances]", *options, "model.backbone=resnet10t",
           "data.image_size=64", "data.batch_size=6", "data.num_workers=0", "train.epochs=1", "train.max_steps=3",
           "weighting.name=uncertainty", "tracking.wandb=disabled"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{k}.pt", weights_only=True) for k in (0, 1))
    for key, value in r0["objective"].items():
        if key.rsplit(".", 1)[-1] not in BN_STATS:  # rank-local
            assert torch.equal(value, r1["objective"][key]), key
    assert "weighting.log_vars.instances:mask" in r0["objective"]
    run = tmp_path / "runs" / "synthfood-instances" / "ddp"
    reported = json.loads((run / "summary.json").read_text())["final"]
    assert main(["eval", str(run / "checkpoints" / "last.pt"), "--cpu", "--json", str(tmp_path / "m.json")]) == 0
    alone = json.loads((tmp_path / "m.json").read_text())
    aps = [k for k in alone if k.startswith("instances/") and "AP" in k]
    assert len(aps) == 6 and {k: reported[k] for k in aps} == pytest.approx({k: alone[k] for k in aps}, abs=1e-6)
