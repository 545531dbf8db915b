"""Evaluate a freshly built model (seed 0) on a config's eval split; under torchrun each rank
scores its shard and rank 0 writes the scores as JSON (test_eval_exact.py)."""
import json
import sys
from pathlib import Path

import torch

from foodmtl.config import load_config
from foodmtl.data.builder import build_data
from foodmtl.engine.distributed import DistInfo, cleanup, init_distributed
from foodmtl.engine.evaluate import evaluate, eval_loader
from foodmtl.models.multitask import build_model
from foodmtl.tasks import task_options


def built(config: Path, overrides: list[str]):
    """The eval split, and the model ``torch.manual_seed(0)`` builds for it, in eval mode."""
    cfg = load_config(config, overrides)
    data = build_data(cfg.data, cfg.tasks, 0, task_options(cfg))
    torch.manual_seed(0)
    return data.eval, build_model(cfg.model, data.tasks).eval()


def scores(dataset, model, batch_size: int, info: DistInfo) -> dict[str, float]:
    return evaluate(model, eval_loader(dataset, batch_size, 0, info), info)[0]


if __name__ == "__main__":
    config, out, batch_size, *overrides = sys.argv[1:]
    info = init_distributed("cpu")
    result = scores(*built(Path(config), overrides), int(batch_size), info)
    if info.is_main:
        Path(out).write_text(json.dumps(result))
    cleanup()
