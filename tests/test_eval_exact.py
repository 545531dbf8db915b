"""Every evaluation number is a function of the model and the eval set only (issue #24 items 1, 2,
6e): the same model scores the same with any eval batch size, on one process or two ranks."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eval_worker import built, scores
from foodmtl.engine.distributed import DistInfo
from foodmtl.engine.evaluate import eval_loader
from foodmtl.tasks import IGNORE_INDEX

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"
CPU = DistInfo(0, 1, 0, torch.device("cpu"))
SMALL_INSTANCES = {"fpn_channels": 32, "box_head_dim": 64, "mask_head_layers": 1, "anchor_scale": 4,
                   "proposals": 100, "rois_per_image": 64}


def overrides(root: Path) -> list[str]:
    """dish (6 classes: top-1, 3 and 5), ingredients, mass, segmentation and instances: each loss kind."""
    return [f"data.root={root}", "tasks=[dish,ingredients,mass,segmentation,instances]",
            *(f"task_options.instances.{k}={v}" for k, v in SMALL_INSTANCES.items())]


@pytest.fixture(scope="module")
def setup(synthfood_root):
    return built(TINY, overrides(synthfood_root))


def hand_top_k(dataset, model) -> dict[str, float]:
    """The fraction of labelled dishes whose class is among the k highest logits, counted here."""
    batch = next(iter(eval_loader(dataset, len(dataset), 0, CPU)))
    with torch.no_grad():
        logits = model(batch.images).logits["dish"]
    target = batch.targets["dish"]
    keep = target != IGNORE_INDEX
    rank = (logits[keep] > logits[keep].gather(1, target[keep, None])).sum(1)  # classes scoring above the truth
    return {f"dish/top{k}": float((rank < k).double().mean()) for k in (1, 3, 5)}


@pytest.mark.parametrize("batch_size", [1, 7, 16])
def test_top_k_is_the_hand_count_whatever_the_eval_batch_size(setup, batch_size):
    """With compute groups on, torchmetrics merged top-3 and top-5 after a first batch where they agreed."""
    expected = hand_top_k(*setup)
    assert len(set(expected.values())) == 3  # top-1, 3 and 5 differ on this set, so a merge shows
    reported = scores(*setup, batch_size, CPU)
    assert {k: reported[k] for k in expected} == pytest.approx(expected, abs=1e-6)
