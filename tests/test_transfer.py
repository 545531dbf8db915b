"""Transfer learning: freezing, unfreezing, init_from, export to timm's names, augmentation presets."""
import json
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import timm
import torch
from albumentations.pytorch import ToTensorV2
from safetensors.torch import load_file

from foodmtl.cli import main
from foodmtl.config import Config, load_config, to_dict
from foodmtl.errors import ConfigError
from foodmtl.synthfood.generate import generate_synthfood
from foodmtl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, PRESETS, train_transform
from foodmtl.engine.checkpoint import load_checkpoint, save_checkpoint
from foodmtl.engine.trainer import Trainer
from foodmtl.models.backbone import Backbone
from foodmtl.models.timm_keys import reference_model, timm_keys

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"


def config(root, out, *extra):
    return load_config(TINY, [f"data.root={root}", f"output_dir={out}", "tracking.wandb=disabled", *extra])


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


# ---- config ---------------------------------------------------------------------------------
def test_freeze_specs_are_read_canonically_and_bad_ones_name_the_forms(tmp_path):
    assert config(tmp_path, tmp_path, "model.freeze=Stages: 2").model.freeze == "stages:2"
    assert config(tmp_path, tmp_path, "optim.name=LAMB").optim.name == "lamb"
    with pytest.raises(ConfigError, match="none, backbone .* or stages:N"):
        config(tmp_path, tmp_path, "model.freeze=layers:2")
    with pytest.raises(ConfigError, match="model.freeze=none"):
        config(tmp_path, tmp_path, "train.unfreeze_at=1")
    with pytest.raises(ConfigError, match="never train"):
        config(tmp_path, tmp_path, "model.freeze=backbone", "train.unfreeze_at=3")
    with pytest.raises(ConfigError, match="did you mean: adam, adamw"):
        config(tmp_path, tmp_path, "optim.name=adamx")


# ---- augmentation presets ------------------------------------------------------------------
def test_standard_preset_is_the_training_transform_runs_had_before():
    before = [A.RandomResizedCrop(size=(64, 64), scale=(0.35, 1.0), mask_interpolation=0), A.HorizontalFlip(p=0.5),
              A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=0.8)]
    tail = [A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD), ToTensorV2()]
    elastic = [A.ElasticTransform(alpha=30, sigma=6, p=0.3, mask_interpolation=0)]
    assert A.to_dict(train_transform(64)) == A.to_dict(A.Compose(before + tail))
    assert A.to_dict(train_transform(64, "standard", elastic=True)) == A.to_dict(A.Compose(before + elastic + tail))
    assert A.to_dict(train_transform(64, "strong")) != A.to_dict(A.Compose(before + tail))


GREYS = np.array([20, 80, 140, 200, 250], dtype=np.uint8)


def labelled_picture() -> np.ndarray:
    """An asymmetric layout of five labels: any shift, flip or rotation of one but not the other shows."""
    mask = np.zeros((96, 96), dtype=np.uint8)
    mask[:, 20:45] = 1
    mask[10:40, 60:90] = 2
    mask[55:90, 50:70] = 3
    mask[70:96, 0:30] = 4
    return mask


def agreement(image: np.ndarray, mask: np.ndarray) -> float:
    """Share of pixels whose grey value is near the typical value of their label after the transform
    (photometric steps map each grey level to one value; blur, erasing and borders disturb a few)."""
    grey = image.mean(axis=2)
    typical = {k: np.median(grey[mask == k]) for k in np.unique(mask)}
    return float(np.mean([abs(g - typical[k]) < 12 for g, k in zip(grey.ravel(), mask.ravel())]))


def unnormalised(tensor: torch.Tensor) -> np.ndarray:
    return (tensor.permute(1, 2, 0).numpy() * IMAGENET_STD + IMAGENET_MEAN) * 255


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_move_image_and_mask_together(preset):
    mask = labelled_picture()
    image = np.repeat(GREYS[mask][..., None], 3, axis=2)
    transform = train_transform(64, preset)
    misaligned = []
    for seed in range(12):
        transform.set_random_seed(seed)
        out = transform(image=image, mask=mask)
        moved = out["mask"].numpy()
        assert set(np.unique(moved)) <= set(range(5))  # nearest: no blended label
        assert agreement(unnormalised(out["image"]), moved) > 0.7, seed
        misaligned.append(agreement(unnormalised(out["image"]), moved[:, ::-1]))
    assert np.mean(misaligned) < 0.6  # the check sees a mask that did not move with its image


def test_strong_preset_is_reproducible_from_the_seed_a_resume_gives_it():
    mask = labelled_picture()
    image = np.repeat(GREYS[mask][..., None], 3, axis=2)
    transform = train_transform(48, "strong")
    outs = []
    for seed in (7, 7, 8):
        transform.set_random_seed(seed)
        outs.append(transform(image=image, mask=mask))
    assert torch.equal(outs[0]["image"], outs[1]["image"]) and torch.equal(outs[0]["mask"], outs[1]["mask"])
    # another seed, another draw: an identity (or seed-blind) transform would fail here
    assert not torch.equal(outs[0]["image"], outs[2]["image"]) and not torch.equal(outs[0]["mask"], outs[2]["mask"])


# ---- timm names: mapping and export ----------------------------------------------------------
@pytest.mark.parametrize("arch", ["resnet10t", "convnext_atto", "efficientnet_b0", "vit_tiny_patch16_224"])
def test_every_features_only_key_maps_onto_the_plain_timm_model(arch):
    features = timm.create_model(arch, features_only=True)
    plain = reference_model(arch).state_dict()
    names = timm_keys(features.state_dict(), reference_model(arch))
    assert len(set(names.values())) == len(names)
    for key, value in features.state_dict().items():
        assert plain[names[key]].shape == value.shape, key


def fake_checkpoint(path: Path, arch: str, multiscale: bool) -> dict[str, torch.Tensor]:
    """A foodmtl checkpoint whose backbone holds random values unlike any fresh initialisation."""
    torch.manual_seed(1)
    net = Backbone(arch, multiscale=multiscale).net
    weights = {k: (v + torch.randn_like(v) if v.is_floating_point() else v + 3) for k, v in net.state_dict().items()}
    cfg = load_config(None, [f"model.backbone={arch}"])
    save_checkpoint({"objective": {f"model.backbone.net.{k}": v for k, v in weights.items()}, "config": to_dict(cfg),
                     "tasks": []}, path)
    return weights


@pytest.mark.parametrize("multiscale", [False, True])
def test_export_loads_strictly_into_timm_and_through_pretrained_file(tmp_path, multiscale, capsys):
    weights = fake_checkpoint(tmp_path / "best.pt", "resnet10t", multiscale)
    out = tmp_path / "backbone.safetensors"
    assert main(["export", str(tmp_path / "best.pt"), "--out", str(out)]) == 0
    exported = load_file(out)
    plain = timm.create_model("resnet10t", pretrained=True, pretrained_cfg_overlay=dict(file=str(out)), num_classes=0)
    assert set(exported) == set(plain.state_dict())  # every key of the plain model, none else
    assert all(torch.equal(v, exported[k]) for k, v in plain.state_dict().items())
    for into in (False, True):
        loaded = Backbone("resnet10t", pretrained_file=str(out), multiscale=into).net.state_dict()
        assert set(loaded) == set(weights) and all(torch.equal(loaded[k], weights[k]) for k in weights)
    assert "not in this backbone" not in capsys.readouterr().out


def test_export_maps_a_flattened_features_only_net_back_to_timms_names(tmp_path, capsys):
    weights = fake_checkpoint(tmp_path / "seg.pt", "convnext_atto", multiscale=True)
    out = tmp_path / "convnext.safetensors"
    assert main(["export", str(tmp_path / "seg.pt"), "--out", str(out)]) == 0
    exported = load_file(out)
    assert "stages.0.blocks.0.conv_dw.weight" in exported and not any("stages_" in k for k in exported)
    plain = timm.create_model("convnext_atto", pretrained=True, pretrained_cfg_overlay=dict(file=str(out)),
                              num_classes=0).state_dict()
    assert set(plain) - set(exported) == {"head.norm.weight", "head.norm.bias"}  # after the last stage
    assert all(torch.equal(plain[k], v) for k, v in exported.items())
    assert "head.norm.weight" in capsys.readouterr().out
    loaded = Backbone("convnext_atto", pretrained_file=str(out), multiscale=True).net.state_dict()
    assert set(loaded) == set(weights) and all(torch.equal(loaded[k], weights[k]) for k in weights)


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "b.safetensors")]) == 2
    assert main(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "b.pth")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "checkpoint not found" in err[0] and "must end in .safetensors" in err[2]


# ---- freezing ------------------------------------------------------------------------------
def modes_during_training(module: torch.nn.Module) -> list[bool]:
    """``module.training`` at each training forward (evaluation runs without gradients)."""
    seen: list[bool] = []
    module.register_forward_hook(lambda m, args, out: seen.append(m.training) if torch.is_grad_enabled() else None)
    return seen


@pytest.mark.slow
def test_linear_probe_keeps_the_backbone_bit_identical_and_out_of_the_optimizer(synthfood_root, tmp_path):
    trainer = Trainer(config(synthfood_root, tmp_path, "model.freeze=backbone", "train.epochs=2"))
    backbone, heads = trainer.objective.model.backbone, trainer.objective.model.heads
    before, heads_before = snapshot(backbone), snapshot(heads)
    modes = modes_during_training(backbone.net.bn1)
    trainer.fit()
    assert not changed(before, backbone)  # weights and BatchNorm statistics
    assert changed(heads_before, heads)
    assert modes and not any(modes)  # BatchNorm in eval mode throughout
    in_optimizer = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not in_optimizer & {id(p) for p in backbone.parameters()}
    assert not any(p in trainer.optimizer.state for p in backbone.parameters())


@pytest.mark.slow
def test_freezing_stages_freezes_the_stem_and_the_first_stages_only(synthfood_root, tmp_path):
    trainer = Trainer(config(synthfood_root, tmp_path, "model.freeze=stages:1", "train.epochs=1"))
    net = trainer.objective.model.backbone.net
    before = snapshot(net)
    modes = modes_during_training(net.layer1[0].bn1), modes_during_training(net.layer2[0].bn1)
    trainer.fit()
    moved = changed(before, net)
    frozen = [k for k in before if k.split(".")[0] in ("conv1", "bn1", "layer1")]
    assert frozen and not moved & set(frozen)
    assert {k for k in before if k.startswith("layer2.")} <= moved  # running statistics included
    assert not any(modes[0]) and all(modes[1])


def test_freezing_that_leaves_nothing_to_train_or_share_is_refused(synthfood_root, tmp_path):
    with pytest.raises(ConfigError, match="stages:0..3"):
        Trainer(config(synthfood_root, tmp_path, "model.freeze=stages:4"))
    with pytest.raises(ConfigError, match="no shared parameter"):
        Trainer(config(synthfood_root, tmp_path, "model.freeze=backbone", "weighting.name=pcgrad"))


@pytest.mark.slow
def test_unfreeze_at_adds_the_backbone_at_the_schedules_current_lr(synthfood_root, tmp_path):
    cfg = config(synthfood_root, tmp_path, "model.freeze=backbone", "train.unfreeze_at=1", "train.epochs=2",
                 "optim.backbone_lr_scale=0.1", "optim.layer_decay=0.5")
    trainer = Trainer(cfg)
    net = trainer.objective.model.backbone.net
    before = snapshot(net)
    trainer.train_epoch()
    assert not changed(before, net) and not trainer.state.unfrozen
    trainer.state.epoch, trainer.state.batch_in_epoch = 1, 0  # what fit() does between epochs
    trainer._unfreeze_when_due()
    step = trainer.scheduler.last_epoch
    joined = [g for g in trainer.optimizer.param_groups if g["name"] == "backbone"]
    assert {id(p) for g in joined for p in g["params"]} == {id(p) for p in net.parameters()}
    factor = trainer.scheduler.lr_lambdas[0](step)
    assert all(g["lr"] == g["initial_lr"] * factor for g in joined)
    assert max(g["initial_lr"] for g in joined) == pytest.approx(cfg.optim.lr * 0.1 * 0.5)  # the last block
    trainer.train_epoch()
    assert {k for k in before if k.startswith("layer4.")} <= changed(before, net)
    assert trainer.state.unfrozen and len(trainer.scheduler.base_lrs) == len(trainer.optimizer.param_groups)


# ---- init_from -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def source_run(synthfood_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("source")
    trainer = Trainer(config(synthfood_root, out, "run=source", "train.max_steps=2", "train.epochs=1"))
    trainer.fit()
    return trainer.run_dir / "checkpoints" / "best.pt"


def source_model(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in load_checkpoint(path)["objective"].items() if k.startswith(prefix)}


@pytest.mark.slow
def test_init_from_loads_the_backbone_and_heads_whose_task_matches_and_reports_the_rest(source_run, synthfood_root,
                                                                                          tmp_path):
    cfg = config(synthfood_root, tmp_path, f"model.init_from={source_run}", "tasks=[dish, cuisine, segmentation]",
                 "train.max_steps=1", "train.epochs=1", "model.decoder=fcn", "run=target")
    trainer = Trainer(cfg)
    model = trainer.objective.model
    assert trainer.init_report["loaded"] == ["backbone", "heads.dish", "heads.cuisine"]
    assert trainer.init_report["initialised"] == {"decoder": "no such task in the source"}
    # a pooled backbone into a features_only one: same timm names, same values
    theirs = source_model(source_run, "model.backbone.net.")
    assert all(torch.equal(v, theirs[k]) for k, v in model.backbone.net.state_dict().items())
    head = source_model(source_run, "model.heads.dish.")
    assert all(torch.equal(v, head[k]) for k, v in model.heads["dish"].state_dict().items())
    trainer.fit()
    summary = json.loads((trainer.run_dir / "summary.json").read_text())
    assert summary["init_from"] == trainer.init_report and summary["final"]


@pytest.mark.slow
def test_init_from_equals_pretrained_file_of_the_export_when_no_head_matches(source_run, tmp_path):
    other = tmp_path / "other"
    generate_synthfood(other, dishes=5, per_dish=8, size=64, seed=3)
    out = tmp_path / "backbone.safetensors"
    assert main(["export", str(source_run), "--out", str(out)]) == 0
    models = []
    for source in (f"model.init_from={source_run}", f"model.pretrained_file={out}"):
        trainer = Trainer(config(other, tmp_path / "runs", source, "tasks=[dish]"))
        models.append(trainer.objective.model.state_dict())
    assert trainer.init_report is None
    assert models[0].keys() == models[1].keys() and all(torch.equal(v, models[1][k]) for k, v in models[0].items())


@pytest.mark.slow
def test_init_from_takes_the_decoder_only_of_the_same_task_and_decoder(synthfood_root, tmp_path):
    seg = ["tasks=[dish, segmentation]", "model.decoder=fcn"]
    source = Trainer(config(synthfood_root, tmp_path, "run=seg", *seg))
    with torch.no_grad():
        for p in source.objective.parameters():
            p.add_(torch.randn_like(p))
    source._save("last.pt")
    path = source.run_dir / "checkpoints" / "last.pt"
    same = Trainer(config(synthfood_root, tmp_path, f"model.init_from={path}", *seg))
    assert same.init_report["loaded"] == ["backbone", "heads.dish", "decoder"]
    theirs = source.objective.model.decoder.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in same.objective.model.decoder.state_dict().items())
    other = Trainer(config(synthfood_root, tmp_path, f"model.init_from={path}", "tasks=[dish, segmentation]",
                           "model.decoder=fpn"))
    assert other.init_report["initialised"] == {"decoder": "the source's decoder is fcn with options {}"}


def test_a_missing_init_from_checkpoint_is_one_line_before_anything_is_written(tmp_path, capsys):
    assert main(["train", str(TINY), f"output_dir={tmp_path}", "model.init_from=/nope/best.pt"]) == 2
    assert capsys.readouterr().err == "error: model.init_from=/nope/best.pt: no such checkpoint\n"
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_init_from_refuses_another_architecture(source_run, synthfood_root, tmp_path):
    with pytest.raises(ConfigError, match="set model.backbone=resnet10t"):
        Trainer(config(synthfood_root, tmp_path, f"model.init_from={source_run}", "model.backbone=resnet18"))


@pytest.mark.slow
def test_init_from_names_why_a_head_was_not_taken(source_run, tmp_path):
    other = tmp_path / "other"
    generate_synthfood(other, dishes=5, per_dish=8, size=64, seed=3)
    trainer = Trainer(config(other, tmp_path, f"model.init_from={source_run}", "tasks=[dish, ingredients]"))
    assert trainer.init_report["initialised"]["heads.dish"] == "classes differ: 6 in the source, 5 here"
    assert trainer.init_report["loaded"][0] == "backbone"


def test_config_dataclass_has_the_new_keys():
    cfg = Config()
    assert (cfg.model.freeze, cfg.model.init_from, cfg.train.unfreeze_at, cfg.train.ema_decay) == ("none", None, 0, 0.0)
    assert (cfg.optim.name, cfg.optim.backbone_lr_scale, cfg.optim.layer_decay, cfg.data.augment) == \
        ("adamw", 1.0, None, "standard")
