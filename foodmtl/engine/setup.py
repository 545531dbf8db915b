"""What a training run builds before its first step: the started config, the loaders, the
objective (model + weighting, ``model.init_from``), the optimizer, schedule and scaler, all
without writing anything; then the run folder and its tracker, the run's first writes."""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from foodmtl.config import Config, ModelConfig, save_config, to_dict
from foodmtl.data.builder import build_data, train_loader
from foodmtl.data.dataset import FoodDataset
from foodmtl.engine.distributed import DistInfo, broadcast_object
from foodmtl.engine.evaluate import eval_loader, resolve_amp
from foodmtl.engine.init_from import init_from
from foodmtl.engine.objective import Objective
from foodmtl.engine.optim import build_optimizer, param_groups, warmup_cosine
from foodmtl.engine.preflight import require_metric, require_training_steps, require_wandb_mode
from foodmtl.engine.resume import StartPlan
from foodmtl.engine.run_dir import claim_run_dir
from foodmtl.engine.snapshot import Optimization
from foodmtl.errors import ConfigError
from foodmtl.models.multitask import build_model
from foodmtl.tasks import TaskSpec, get_kind, loss_owners, task_options
from foodmtl.tracking import NullTracker, Tracker
from foodmtl.tracking.provenance import provenance
from foodmtl.tracking.wandb_run import WandbWriter
from foodmtl.utils.output import atomic_write
from foodmtl.weighting import WeightingStrategy, build_weighting

log = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def started_config(cfg: Config, device: torch.device) -> Config:
    """``cfg`` with ``train.amp=auto`` resolved and ``launch_dir`` set: where the config's relative
    paths (data.root) were given from, for eval/predict elsewhere."""
    train = dataclasses.replace(cfg.train, amp=resolve_amp(cfg.train.amp, device))
    return dataclasses.replace(cfg, launch_dir=cfg.launch_dir or os.getcwd(), train=train)


@dataclass
class Loaders:
    tasks: list[TaskSpec]
    train: DataLoader
    eval: DataLoader
    test: DataLoader | None  # data.test_split, scored once with best.pt at the end


def build_loaders(cfg: Config, info: DistInfo) -> Loaders:
    """The train (this rank's shard) and eval loaders, after the checks a run passes first."""
    data = build_data(cfg.data, cfg.tasks, cfg.train.seed, task_options(cfg))
    data.print_notes(info.is_main)
    train = train_loader(data.train, cfg.data.batch_size, cfg.data.num_workers, cfg.train.seed, info.rank,
                         info.world, info.device.type == "cuda", data.train_weights)
    require_training_steps(len(train), len(data.train), cfg, info.world)
    require_metric(cfg.train.best_metric, data.tasks)
    require_wandb_mode(cfg.tracking.wandb)
    def held_out(dataset: FoodDataset) -> DataLoader:
        return eval_loader(dataset, cfg.data.eval_batch_size, cfg.data.num_workers, info)

    return Loaders(data.tasks, train, held_out(data.eval), held_out(data.test) if data.test is not None else None)


def build_objective(cfg: Config, tasks: list[TaskSpec], info: DistInfo, resuming: bool) -> tuple[Objective,
                                                                                                dict | None]:
    """The objective on the device, and what ``model.init_from`` loaded (None without it, or when
    ``resuming``: a resume restores every weight itself)."""
    model = build_model(model_config(cfg.model), tasks)
    report = None
    if cfg.model.init_from and not resuming:
        report = init_from(model, cfg.model.init_from, cfg.model.backbone, (cfg.model.decoder,
                                                                             cfg.model.decoder_options))
    if cfg.model.sync_bn and info.world > 1:
        if info.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            log.warning("model.sync_bn ignored: SyncBatchNorm needs CUDA; BatchNorm stays per-rank")
    objective = Objective(model, build_task_weighting(cfg, tasks)).to(info.device)
    if cfg.model.channels_last:
        objective.to(memory_format=torch.channels_last)
    return objective, report


def build_task_weighting(cfg: Config, tasks: list[TaskSpec]) -> WeightingStrategy:
    owners = loss_owners(tasks)  # a task weighted as several losses (instances.separate_losses)
    likelihood = {t.name: get_kind(t.kind).likelihood for t in tasks}
    weighting = build_weighting(cfg.weighting.name, list(owners), cfg.weighting.options,
                                {loss: likelihood[task] for loss, task in owners.items()}, cfg.weighting.lr)
    if cfg.train.amp == "fp16" and weighting.gradient_based and not weighting.scale_equivariant:
        raise ConfigError(f"weighting.name={cfg.weighting.name} is not scale-equivariant, so fp16's loss "
                          "scaling would change its update; use train.amp=bf16 or none")
    return weighting


def model_config(model: ModelConfig) -> ModelConfig:
    """The model config, without hub or file weights when ``model.init_from`` replaces them."""
    if model.init_from and (model.pretrained or model.pretrained_file):
        log.info("model.init_from replaces model.pretrained / model.pretrained_file")
        return dataclasses.replace(model, pretrained=False, pretrained_file=None)
    return model


def build_optimization(objective: Objective, cfg: Config, batches_per_epoch: int,
                       device: torch.device) -> Optimization:
    """The optimizer over the trainable parameters, warmup + cosine over the run, the fp16 scaler."""
    optimizer = build_optimizer(param_groups(objective, cfg.model.backbone, cfg.optim), cfg.optim)
    steps_per_epoch = math.ceil(batches_per_epoch / cfg.train.accum_steps)
    total = cfg.train.max_steps or cfg.train.epochs * steps_per_epoch
    warmup = int(cfg.optim.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, warmup))
    return Optimization(optimizer, scheduler, torch.amp.GradScaler(device.type, enabled=cfg.train.amp == "fp16"))


def open_run(cfg: Config, plan: StartPlan, info: DistInfo, restored_at: tuple[int, int],
             wandb_id: str | None) -> tuple[Path, Tracker | NullTracker]:
    """The run's first writes, once bad input can no longer fail the start: rank 0 claims a new
    folder (or takes resume=auto's) and starts tracking in it. ``restored_at``: the (step, epoch)
    the run starts from."""
    run_dir = None
    if info.is_main:
        run_dir = plan.run_dir or str(claim_run_dir(cfg))
        if plan.checkpoint and not plan.in_place:
            log.info("continuing %s (step %d) into the new run %s; the source run is left as it is",
                     plan.checkpoint, restored_at[0], run_dir)
    run_dir = Path(broadcast_object(run_dir, info))
    if not info.is_main:
        return run_dir, NullTracker()
    return run_dir, open_tracker(cfg, run_dir, info.world, wandb_id, restored_at if plan.in_place else None)


def write_eval_list(run_dir: Path, split: str, dataset: FoodDataset) -> Path:
    """``<run>/<split>_images.txt``: the images this run evaluates on, one path a line in the order the
    reader listed them, so a carved validation split (data/validation.py) can be audited and reproduced."""
    path = run_dir / f"{split}_images.txt"
    text = "".join(f"{image}\n" for image in dataset.paths.tolist())
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def open_tracker(cfg: Config, run_dir: Path, world: int, wandb_id: str | None,
                 resumed_at: tuple[int, int] | None) -> Tracker:
    """Rank 0's tracker of a claimed run folder: config.yaml, local files and W&B. ``resumed_at``:
    (step, epoch) of a run continued in place, whose files go on from there."""
    resolved = dataclasses.replace(cfg, run=run_dir.name, resume=None)
    save_config(resolved, run_dir / "config.yaml")
    t = cfg.tracking
    wandb = WandbWriter(t.wandb, run_dir, run_dir.name, to_dict(resolved) | provenance(world), t.project,
                        t.entity, t.group or cfg.experiment, t.tags, job_type=t.job_type, run_id=wandb_id)
    step, epoch = resumed_at or (None, None)
    return Tracker(run_dir, wandb, resume_step=step, resume_epoch=epoch)
