"""Parameter groups, optimizer and LR schedule: timm's grouping and optimizers under the project's rules.

Groups, in this order (group 0 has the base LR, the one logged as ``lr``):

1. heads and decoder: ``optim.lr``; weight decay except on biases and norms;
2. the weighting strategy's own parameters (e.g. uncertainty log-variances, GradNorm's weights):
   ``weighting.lr`` (the strategy's ``lr``; None: ``optim.lr``), no weight decay, no backbone scaling,
   no layer decay; the warmup-cosine schedule scales it like every group;
3. the backbone: timm's groups of the plain timm model, ``param_groups_weight_decay`` or, with
   ``optim.layer_decay``, ``param_groups_layer_decay`` (the model's ``no_weight_decay()`` names,
   e.g. ViT's pos_embed, without decay as in ``create_optimizer_v2``), each at
   ``lr x optim.backbone_lr_scale x timm's lr_scale``. timm groups the model *with* its classifier,
   so the heads sit where the classifier was, at the top (scale 1): the last block gets
   ``layer_decay``, the one below ``layer_decay**2``, the stem the smallest, exactly as a timm
   fine-tuning recipe's ``layer_decay`` means.

Biases and norms are told apart by timm's rule (1-d tensors and ``.bias``). The LR of each group is
written into its ``lr``, which LambdaLR scales (timm's own schedulers would read ``lr_scale``).
Frozen parameters are in no group, so they have no optimizer state; ``join`` adds them mid-run.
The optimizer is timm's ``create_optimizer_v2`` by name (``optim.name``).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from timm.optim import create_optimizer_v2, param_groups_layer_decay, param_groups_weight_decay
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from foodmtl.config import OptimConfig
from foodmtl.engine.objective import Objective
from foodmtl.models.timm_keys import named_timm_parameters, reference_model


def param_groups(objective: Objective, backbone: str, cfg: OptimConfig) -> list[dict]:
    """Every trainable parameter of ``objective`` in its group (``backbone``: the timm model name)."""
    return (task_groups(objective.model, cfg) + strategy_groups(objective, cfg)
            + backbone_groups(objective.model.backbone.net, backbone, cfg))


def task_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    parts = nn.ModuleDict({name: part for name, part in model.named_children() if name != "backbone"})
    return [{**group, "lr": cfg.lr, "name": "heads"} for group in
            param_groups_weight_decay(parts, cfg.weight_decay) if group["params"]]


def strategy_groups(objective: Objective, cfg: OptimConfig) -> list[dict]:
    params = [p for p in objective.weighting.parameters() if p.requires_grad]
    lr = cfg.lr if objective.weighting.lr is None else objective.weighting.lr
    return [{"params": params, "weight_decay": 0.0, "lr": lr, "name": "weighting"}] if params else []


def backbone_groups(net: nn.Module, backbone: str, cfg: OptimConfig) -> list[dict]:
    """The trainable parameters of the timm ``net`` in timm's groups (see the module docstring)."""
    reference = reference_model(backbone)
    ours = named_timm_parameters(net, reference)
    no_decay = getattr(reference, "no_weight_decay", set)()
    if cfg.layer_decay is None:
        grouped = param_groups_weight_decay(reference, cfg.weight_decay, no_weight_decay_list=no_decay)
    else:
        grouped = param_groups_layer_decay(reference, cfg.weight_decay, no_weight_decay_list=no_decay,
                                           layer_decay=cfg.layer_decay)
    name_of = {id(p): name for name, p in reference.named_parameters()}
    groups = []
    for group in grouped:
        params = [ours[name_of[id(p)]] for p in group["params"] if name_of[id(p)] in ours]
        params = [p for p in params if p.requires_grad]
        if params:
            lr = cfg.lr * cfg.backbone_lr_scale * group.get("lr_scale", 1.0)
            groups.append({"params": params, "weight_decay": group["weight_decay"], "lr": lr, "name": "backbone"})
    return groups


def build_optimizer(groups: list[dict], cfg: OptimConfig) -> torch.optim.Optimizer:
    betas = {"betas": tuple(cfg.betas)} if cfg.betas is not None else {}
    return create_optimizer_v2(groups, opt=cfg.name, lr=cfg.lr, weight_decay=cfg.weight_decay,
                               momentum=cfg.momentum, **betas)


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


def join(optimizer: torch.optim.Optimizer, scheduler: LambdaLR, groups: list[dict]) -> None:
    """Add ``groups`` mid-run at the schedule's current point (no second warm-up): each starts at its
    base LR times the schedule's factor now, and the scheduler gets its base LR and factor, so it
    goes on scaling it and its state_dict covers it. Their optimizer state starts at their first step."""
    factor = scheduler.lr_lambdas[0]
    for group in groups:
        group["initial_lr"] = group["lr"]
        group["lr"] = group["initial_lr"] * factor(scheduler.last_epoch)
        optimizer.add_param_group(group)
        scheduler.base_lrs.append(group["initial_lr"])
        scheduler.lr_lambdas.append(factor)
