"""Parameter groups against timm's own grouping, the optimizers by name, and groups joining mid-schedule."""
import pytest
import timm
import torch
from timm.optim import list_optimizers, param_groups_layer_decay, param_groups_weight_decay

from foodmtl.config import OptimConfig, load_config
from foodmtl.config.schema import BETA_OPTIMIZERS
from foodmtl.errors import ConfigError
from foodmtl.config.check import OPTIMIZERS
from foodmtl.engine.objective import Objective
from foodmtl.engine.optim import build_optimizer, join, param_groups, warmup_cosine
from foodmtl.models.backbone import Backbone
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.models.timm_keys import reference_model, timm_keys
from foodmtl.tasks import TaskSpec
from foodmtl.weighting import build_weighting

TASKS = [TaskSpec("dish", "multiclass", ("a", "b", "c")), TaskSpec("ingredients", "multilabel", ("x", "y"))]
LR, WD = 0.01, 0.05


def objective(backbone: str, multiscale: bool = False, weighting: str = "uncertainty") -> Objective:
    torch.manual_seed(0)
    encoder = Backbone(backbone, multiscale=multiscale)
    return Objective(MultiTaskModel(encoder, TASKS), build_weighting(weighting, [t.name for t in TASKS], {}))


def per_parameter(groups: list[dict]) -> dict[int, tuple[float, float, str]]:
    """id(param) -> (lr, weight decay, group name); each parameter in exactly one group."""
    out = {}
    for g in groups:
        for p in g["params"]:
            assert id(p) not in out, "a parameter in two groups"
            out[id(p)] = (g["lr"], g["weight_decay"], g["name"])
    return out


def by_timm_name(obj: Objective, backbone: str, groups: list[dict]) -> dict[str, tuple[float, float]]:
    """Backbone parameter (timm name) -> (LR scale, weight decay)."""
    net = obj.model.backbone.net
    names = timm_keys([n for n, _ in net.named_parameters()], reference_model(backbone))
    table = per_parameter(groups)
    return {names[n]: (table[id(p)][0] / LR, table[id(p)][1]) for n, p in net.named_parameters()}


def timm_reference(backbone: str, groups: list[dict], model: torch.nn.Module) -> dict[str, tuple[float, float]]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (g.get("lr_scale", 1.0), g["weight_decay"]) for g in groups for p in g["params"]}


@pytest.mark.parametrize("backbone, multiscale", [("resnet18", False), ("convnext_atto", True)])
def test_layer_decay_groups_are_timms_with_the_heads_in_the_classifiers_place(backbone, multiscale):
    obj = objective(backbone, multiscale)
    groups = param_groups(obj, backbone, OptimConfig(lr=LR, weight_decay=WD, layer_decay=0.7))
    plain = timm.create_model(backbone)  # with its classifier: the top layer
    reference = timm_reference(backbone, param_groups_layer_decay(plain, WD, layer_decay=0.7), plain)
    ours = by_timm_name(obj, backbone, groups)
    assert ours.keys() <= reference.keys() and len(ours) > 20
    for name, (scale, decay) in ours.items():
        assert scale == pytest.approx(reference[name][0], rel=1e-12) and decay == reference[name][1], name
    classifier = plain.pretrained_cfg["classifier"]
    assert {s for n, (s, _) in reference.items() if n.startswith(classifier + ".")} == {1.0}
    heads = [(lr, wd) for lr, wd, name in per_parameter(groups).values() if name == "heads"]
    assert {lr for lr, _ in heads} == {LR} and {wd for _, wd in heads} == {0.0, WD}


def test_layer_decay_by_hand_for_resnet18():
    """Layers: stem 0, layer1.0 .. layer4.1 are 1..8, the head 9; scale = 0.7 ** (9 - layer)."""
    obj = objective("resnet18")
    ours = by_timm_name(obj, "resnet18", param_groups(obj, "resnet18", OptimConfig(lr=LR, layer_decay=0.7)))
    assert ours["conv1.weight"][0] == pytest.approx(0.7 ** 9)
    assert ours["layer1.0.conv1.weight"][0] == pytest.approx(0.7 ** 8)
    assert ours["layer4.1.conv2.weight"][0] == pytest.approx(0.7)
    assert ours["layer4.1.bn2.weight"] == (pytest.approx(0.7), 0.0)


def test_without_layer_decay_the_backbone_gets_timms_weight_decay_groups_at_the_scaled_lr():
    """ViT: timm's no_weight_decay() names (pos_embed, cls_token) get none, as in create_optimizer_v2."""
    backbone = "vit_tiny_patch16_224"
    obj = objective(backbone)
    groups = param_groups(obj, backbone, OptimConfig(lr=LR, weight_decay=WD, backbone_lr_scale=0.1))
    plain = timm.create_model(backbone)
    grouped = param_groups_weight_decay(plain, WD, no_weight_decay_list=plain.no_weight_decay())
    reference = timm_reference(backbone, grouped, plain)
    ours = by_timm_name(obj, backbone, groups)
    assert {n: d for n, (_, d) in ours.items()} == {n: reference[n][1] for n in ours}
    assert all(scale == pytest.approx(0.1) for scale, _ in ours.values())
    assert ours["pos_embed"][1] == ours["cls_token"][1] == ours["blocks.0.norm1.weight"][1] == 0.0
    assert ours["blocks.0.attn.qkv.weight"][1] == WD


def test_strategy_parameters_keep_the_base_lr_and_no_weight_decay():
    obj = objective("resnet10t")
    groups = param_groups(obj, "resnet10t", OptimConfig(lr=LR, weight_decay=WD, backbone_lr_scale=0.01,
                                                         layer_decay=0.5))
    table = per_parameter(groups)
    strategy = list(obj.weighting.parameters())
    assert strategy and all(table[id(p)] == (LR, 0.0, "weighting") for p in strategy)
    assert groups[0]["name"] == "heads" and groups[0]["lr"] == LR  # group 0's LR is the one logged
    assert set(table) == {id(p) for p in obj.parameters()}


def test_frozen_parameters_are_in_no_group():
    obj = objective("resnet10t")
    for p in obj.model.backbone.parameters():
        p.requires_grad_(False)
    groups = param_groups(obj, "resnet10t", OptimConfig(lr=LR, layer_decay=0.7))
    assert {g["name"] for g in groups} == {"heads", "weighting"}
    assert set(per_parameter(groups)) == {id(p) for p in obj.parameters() if p.requires_grad}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_listed_optimizer_is_timms_and_steps_our_groups(name):
    assert name in list_optimizers()
    obj = objective("resnet10t", weighting="uniform")
    optimizer = build_optimizer(param_groups(obj, "resnet10t", OptimConfig(name=name, lr=LR, backbone_lr_scale=0.5)),
                                OptimConfig(name=name, lr=LR))
    head = obj.model.heads["dish"].fc.weight
    before = head.detach().clone()
    out = obj(torch.randn(2, 3, 32, 32), {"dish": torch.tensor([0, 1]), "ingredients": torch.ones(2, 2)},
              ["dish", "ingredients"])
    out.total.backward()
    optimizer.step()
    assert not torch.equal(head, before)
    assert {g["lr"] for g in optimizer.param_groups if g["name"] == "backbone"} == {LR * 0.5}


def test_sgd_names_choose_nesterov_or_classical_momentum():
    obj = objective("resnet10t")
    groups = lambda: param_groups(obj, "resnet10t", OptimConfig())  # noqa: E731
    sgd = build_optimizer(groups(), OptimConfig(name="sgd", momentum=0.8))
    momentum = build_optimizer(groups(), OptimConfig(name="momentum"))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.8
    assert isinstance(momentum, torch.optim.SGD) and not momentum.defaults["nesterov"]
    assert type(build_optimizer(groups(), OptimConfig(name="lamb"))).__name__ == "Lamb"


@pytest.mark.parametrize("name", BETA_OPTIMIZERS)
def test_betas_reach_every_optimizer_that_takes_them(name):
    obj = objective("resnet10t")
    default = build_optimizer(param_groups(obj, "resnet10t", OptimConfig()), OptimConfig(name=name))
    short = build_optimizer(param_groups(obj, "resnet10t", OptimConfig()), OptimConfig(name=name, betas=[0.8, 0.9]))
    assert short.defaults["betas"] == (0.8, 0.9) != default.defaults["betas"]


@pytest.mark.parametrize("overrides, message", [(["optim.betas=[0.9]"], "must be two values in"),
                                                (["optim.betas=[0.9, 1.0]"], "must be two values in"),
                                                (["optim.name=sgd", "optim.betas=[0.9, 0.99]"], "takes no betas")])
def test_bad_betas_are_one_config_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_joined_groups_continue_the_schedule_and_survive_a_state_dict_round_trip():
    factor = warmup_cosine(10, 2)
    first, second = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.AdamW([{"params": [first], "lr": 0.1}])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    join(optimizer, scheduler, [{"params": [second], "lr": 0.02, "weight_decay": 0.0}])
    assert optimizer.param_groups[1]["lr"] == 0.02 * factor(4) and optimizer.param_groups[1]["initial_lr"] == 0.02
    optimizer.step()
    scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == [0.1 * factor(5), 0.02 * factor(5)]
    again = torch.optim.AdamW([{"params": [first], "lr": 0.1}])
    again_scheduler = torch.optim.lr_scheduler.LambdaLR(again, factor)
    join(again, again_scheduler, [{"params": [second], "lr": 0.02, "weight_decay": 0.0}])
    again.load_state_dict(optimizer.state_dict())
    again_scheduler.load_state_dict(scheduler.state_dict())
    again_scheduler.step()
    scheduler.step()
    assert [g["lr"] for g in again.param_groups] == [g["lr"] for g in optimizer.param_groups]
