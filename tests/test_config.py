from pathlib import Path

import pytest
import yaml

from foodmtl.config import Config, ConfigError, load_config, save_config


def test_defaults_then_yaml_then_overrides(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("model: {backbone: resnet50}\ntrain: {epochs: 5, seed: 1}\n")
    child = tmp_path / "child.yaml"
    child.write_text("_base_: base.yaml\ntrain: {epochs: 7}\n")
    cfg = load_config(child, ["train.seed=3", "weighting.options.weights.dish=2.5", "tasks=[dish,cuisine]"])
    assert cfg.model.backbone == "resnet50"
    assert (cfg.train.epochs, cfg.train.seed) == (7, 3)
    assert cfg.weighting.options == {"weights": {"dish": 2.5}}
    assert cfg.tasks == ["dish", "cuisine"]
    assert cfg.data.image_size == Config().data.image_size


@pytest.mark.parametrize("override, suggestion", [
    ("train.epoch=3", "train.epochs"),
    ("model.backbon=resnet18", "model.backbone"),
    ("weighting.nmae=uniform", "weighting.name"),
])
def test_unknown_key_suggests_close_names(override, suggestion):
    with pytest.raises(ConfigError, match=suggestion):
        load_config(None, [override])


def test_unknown_key_in_yaml_file(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="optim.learning_rate"):
        load_config(path)


def test_malformed_yaml_reports_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: 3\n  seed: [1, 2\nmodel: {}\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_config(path)


@pytest.mark.parametrize("override", ["train.amp=fp32", "data.batch_size=0", "train.epochs=abc", "optim.lr=-1"])
def test_bad_values_rejected(override):
    with pytest.raises(ConfigError):
        load_config(None, [override])


def test_override_must_be_key_value():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.epochs"])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["train.epochs=2", "weighting.name=manual", "weighting.options.weights.dish=2"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]["epochs"] == 2


@pytest.mark.parametrize("path", sorted(str(p) for p in (Path(__file__).parents[1] / "experiments").rglob("*.yaml")
                                        if p.parent.name != "ablations"))
def test_every_shipped_experiment_loads(path):
    cfg = load_config(path)
    assert cfg.tasks and cfg.experiment != "default"


def test_amp_auto_is_bf16_only_on_a_gpu_that_has_it():
    import torch

    from foodmtl.engine.evaluate import resolve_amp

    assert resolve_amp("auto", torch.device("cpu")) == "none"
    assert resolve_amp("fp16", torch.device("cpu")) == "fp16"
    if torch.cuda.is_available():
        assert resolve_amp("auto", torch.device("cuda")) == ("bf16" if torch.cuda.is_bf16_supported() else "none")
