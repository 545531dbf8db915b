"""Freezing the backbone (``model.freeze``) and letting it train again (``train.unfreeze_at``).

- ``backbone``: a linear probe on fixed features; the heads (and the decoder) train.
- ``stages:N``: the stem and the first N stages, by timm's coarse ``group_matcher`` (resnet:
  conv1/bn1 then layer1..layer4; ConvNeXt: stem then stages.0..3; ViT: patch embedding then each
  block), so ``stages:0`` freezes the stem only. N must leave something to train.

A frozen parameter has ``requires_grad=False`` (no gradient, no optimizer state) and every module
whose parameters are all frozen runs in eval mode, whatever mode the model is in: its BatchNorm
statistics stay as they are and its dropout / drop-path is off, so the frozen part is a fixed
function. A forward pre-hook does that, because ``model.train()`` (every epoch, and after each
evaluation) would switch it back. Module types, and so state_dict keys, never change: timm's
``freeze`` swaps BatchNorm2d for FrozenBatchNorm2d, which has no ``num_batches_tracked`` and keeps
weight and bias as buffers, so a frozen run's checkpoints would not load into the model that
eval, predict, export or a resume past ``unfreeze_at`` build.
"""
from __future__ import annotations

from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.hooks import RemovableHandle

from foodmtl.config import Config
from foodmtl.engine.objective import Objective
from foodmtl.engine.optim import backbone_groups, join
from foodmtl.errors import ConfigError
from foodmtl.models.timm_keys import layer_ids, named_timm_parameters, reference_model


def frozen_parameters(net: nn.Module, backbone: str, spec: str) -> list[nn.Parameter]:
    """The parameters of the timm ``net`` that ``spec`` (none | backbone | stages:N) freezes."""
    if spec == "none":
        return []
    if spec == "backbone":
        return list(net.parameters())
    stages = int(spec.partition(":")[2])
    reference = reference_model(backbone)
    try:
        ids = layer_ids(reference, coarse=True)
    except ValueError as exc:
        raise ConfigError(f"model.freeze={spec}: {exc}; use model.freeze=backbone") from None
    ours = named_timm_parameters(net, reference)
    top = max(ids[name] for name in ours)
    if stages >= top:
        raise ConfigError(f"model.freeze={spec} would freeze all of {backbone}, whose stem is followed by {top} "
                          f"stage(s) or groups; use stages:0..{top - 1}, or model.freeze=backbone")
    return [p for name, p in ours.items() if ids[name] <= stages]


def hold_eval(module: nn.Module, args) -> None:
    module.eval()


class Freezer:
    """Applies a freeze spec to a backbone's timm net; ``release`` undoes it."""

    def __init__(self, net: nn.Module, backbone: str, spec: str):
        self.net = net
        self.params = frozen_parameters(net, backbone, spec)
        frozen = {id(p) for p in self.params}
        for p in self.params:
            p.requires_grad_(False)
        self.hooks: list[RemovableHandle] = [m.register_forward_pre_hook(hold_eval)
                                             for m in outermost_frozen(net, frozen)]

    @property
    def active(self) -> bool:
        return bool(self.params)

    def release(self) -> list[nn.Parameter]:
        """Make the frozen parameters trainable again (the next ``model.train()`` restores the
        modules' training mode) and return them."""
        for handle in self.hooks:
            handle.remove()
        for p in self.params:
            p.requires_grad_(True)
        released, self.params, self.hooks = self.params, [], []
        return released


def outermost_frozen(net: nn.Module, frozen: set[int]) -> list[nn.Module]:
    """The largest modules all of whose (>= 1) parameters are frozen, none inside another."""
    found: list[nn.Module] = []

    def visit(module: nn.Module) -> None:
        params = list(module.parameters())
        if params and all(id(p) in frozen for p in params):
            found.append(module)
            return
        for child in module.children():
            visit(child)

    visit(net)
    return found


def build_freezer(objective: Objective, cfg: Config) -> Freezer:
    """``model.freeze`` applied to the objective's backbone; a frozen backbone leaves a gradient-level
    strategy nothing shared to combine gradients on (ConfigError)."""
    if cfg.model.freeze == "backbone" and objective.weighting.gradient_based:
        raise ConfigError(f"model.freeze=backbone leaves no shared parameter for weighting.name="
                          f"{cfg.weighting.name} to combine task gradients on; freeze stages:N, or use a "
                          "loss-level strategy")
    return Freezer(objective.model.backbone.net, cfg.model.backbone, cfg.model.freeze)


class Unfreezing:
    """``train.unfreeze_at``: at that epoch the frozen parameters join the optimizer in the groups
    they would have had (engine/optim.py), at the schedule's current learning rate. Its state is the
    checkpoint's ``train_state["unfrozen"]``: a restore unfreezes before the optimizer is loaded,
    whose saved groups then held the backbone."""

    def __init__(self, freezer: Freezer, cfg: Config, optimizer: Optimizer, scheduler: LambdaLR):
        self.freezer, self.at = freezer, cfg.train.unfreeze_at
        self.backbone, self.optim = cfg.model.backbone, cfg.optim
        self.optimizer, self.scheduler = optimizer, scheduler

    def due(self, epoch: int) -> bool:
        return bool(self.at) and self.freezer.active and epoch >= self.at

    def unfreeze(self) -> None:
        net = self.freezer.net
        released = {id(p) for p in self.freezer.release()}
        groups = backbone_groups(net, self.backbone, self.optim)
        joining = [{**g, "params": [p for p in g["params"] if id(p) in released]} for g in groups]
        join(self.optimizer, self.scheduler, [g for g in joining if g["params"]])

    def load_state_dict(self, snapshot: dict) -> None:
        if snapshot["train_state"].get("unfrozen") and self.freezer.active:
            self.unfreeze()
