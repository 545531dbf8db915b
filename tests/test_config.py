from pathlib import Path

import pytest
import yaml

from foodmtl.config import Config, load_config, save_config

from foodmtl.errors import ConfigError


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


@pytest.mark.parametrize("path", sorted(str(p) for p in (Path(__file__).parents[1] / "experiments").rglob("*.yaml")))
def test_every_shipped_experiment_loads(path):
    """Experiments, and every run of each sweep spec (a YAML with ``base:``)."""
    from foodmtl.analysis import sweep

    if "base" in (yaml.safe_load(Path(path).read_text()) or {}):
        cfgs = [load_config(run.args[0], run.args[1:]) for run in sweep.expand(sweep.load_spec(path))]
    else:
        cfgs = [load_config(path)]
    assert cfgs and all(cfg.tasks and cfg.experiment != "default" for cfg in cfgs)


def test_amp_auto_is_bf16_only_on_a_gpu_that_has_it():
    import torch

    from foodmtl.engine.evaluate import resolve_amp

    assert resolve_amp("auto", torch.device("cpu")) == "none"
    assert resolve_amp("fp16", torch.device("cpu")) == "fp16"
    if torch.cuda.is_available():
        assert resolve_amp("auto", torch.device("cuda")) == ("bf16" if torch.cuda.is_bf16_supported() else "none")


# ---- errors that read well (issue 13.5) ------------------------------------------------------
@pytest.mark.parametrize("override, message", [
    ("train.epochs=abc", "train.epochs=abc: expected an integer"),
    ("train.epochs=3.5", "train.epochs=3.5: expected an integer"),
    ("optim.lr=fast", "optim.lr=fast: expected a number"),
    ("train.compile=maybe", "train.compile=maybe: expected true/false"),
    ("tasks=dish", "tasks=dish: expected a list"),
    ("weighting.options=3", "weighting.options=3: expected a mapping"),
    ("data.sources=[{weight: x}]", "data.sources[0].weight=x: expected a number"),
    ("data.taxonomy=[a, b]", None),  # a text field keeps the text: no error
])
def test_type_errors_name_key_value_and_expected_type(override, message):
    if message is None:
        assert load_config(None, [override]).data.taxonomy == "[a, b]"
        return
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == message


def test_type_error_in_a_yaml_file(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("train:\n  epochs: ten\n")
    with pytest.raises(ConfigError, match=r"^train\.epochs=ten: expected an integer$"):
        load_config(path)


@pytest.mark.parametrize("override, key, value", [
    ("run=0123", "run", "0123"),               # YAML 1.1 would read octal 83
    ("run=yes", "run", "yes"),                 # ... and true
    ("tracking.group=2024-01-01", "tracking.group", "2024-01-01"),  # ... and a date
    ("tracking.entity=@me", "tracking.entity", "@me"),  # ... and fail
    ("data.root=/data/food 101", "data.root", "/data/food 101"),
    ("run='quoted'", "run", "quoted"),
    ("resume=null", "resume", None),
    ("optim.lr=1e-3", "optim.lr", 1e-3),       # YAML 1.1 reads text; the float field converts it
    ("tracking.tags=[a, b]", "tracking.tags", ["a", "b"]),
])
def test_text_fields_keep_the_text_as_typed(override, key, value):
    cfg = load_config(None, [override])
    section, _, leaf = key.rpartition(".")
    assert getattr(getattr(cfg, section) if section else cfg, leaf) == value


@pytest.mark.parametrize("override, message", [
    ("run=!!python/object/apply:os.getcwd []", "YAML tags are not allowed"),
    ("train.epochs=!!int 3", "YAML tags are not allowed"),
    ("tasks=[dish, !!python/name:os.system]", "cannot be read"),
    ("train.epochs=[1", "cannot be read"),
])
def test_unreadable_override_is_an_error_not_text(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


@pytest.mark.parametrize("override", ["run=a/b", "run=..", "run=.hidden", "experiment=../x", "experiment=a b",
                                      "tracking.group=x/y", "run=/abs"])
def test_folder_names_must_be_safe(override):
    with pytest.raises(ConfigError, match="not a safe folder name"):
        load_config(None, [override])


def test_safe_folder_names_pass():
    cfg = load_config(None, ["run=uw-s0.v2_b", "experiment=food101-base", "tracking.group=A_1"])
    assert (cfg.run, cfg.experiment, cfg.tracking.group) == ("uw-s0.v2_b", "food101-base", "A_1")


# ---- names as people type them (issue 20.10) -----------------------------------------------
LIBMTL = {"EW": "uniform", "UW": "uncertainty", "DWA": "dwa", "RLW": "rlw", "GradNorm": "gradnorm",
          "PCGrad": "pcgrad", "CAGrad": "cagrad", "MGDA": "mgda", "IMTL": "imtl", "Nash_MTL": "nashmtl",
          "FAMO": "famo"}


@pytest.mark.parametrize("typed, ours", [*LIBMTL.items(), ("Uncertainty", "uncertainty"), ("uw", "uncertainty"),
                                         ("NASH_MTL", "nashmtl")])
def test_weighting_names_any_case_and_libmtl_aliases(typed, ours):
    from foodmtl.weighting import WEIGHTINGS

    assert load_config(None, [f"weighting.name={typed}"]).weighting.name == ours
    assert WEIGHTINGS.get(typed) is WEIGHTINGS.get(ours)


def test_dataset_and_backbone_names_resolve():
    cfg = load_config(None, ["data.dataset=Food101", "model.backbone=tu-resnet50.a1_in1k",
                             "data.sources=[{dataset: FoodSeg103}]"])
    assert (cfg.data.dataset, cfg.model.backbone, cfg.data.sources[0].dataset) == \
        ("food101", "resnet50.a1_in1k", "foodseg103")


@pytest.mark.parametrize("override, message", [
    ("weighting.name=pcgard", "weighting.name: unknown weighting strategy 'pcgard'; did you mean: pcgrad"),
    ("weighting.name=nash", "did you mean: nashmtl, Nash_MTL"),
    ("data.dataset=food-101", "data.dataset: unknown dataset 'food-101'; did you mean: food101"),
    ("data.sources=[{dataset: cocoo}]", r"data.sources\[0\].dataset: unknown dataset 'cocoo'; did you mean: coco"),
    ("model.backbone=resnet-50", "model.backbone: unknown timm backbone 'resnet-50'; did you mean: resnet50"),
    ("model.backbone=tu-resnt50", "unknown timm backbone 'resnt50'; did you mean: resnet50"),
    ("tasks=[dish, dsh]", "tasks: unknown task 'dsh'; did you mean: dish"),
])
def test_unknown_names_name_the_key_and_close_names(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_light_name_lists_match_the_registries():
    """foodmtl/config/names.py lets a config be checked without torch; it must list what is registered."""
    from foodmtl.config.names import WEIGHTING_ALIASES, WEIGHTING_NAMES
    from foodmtl.weighting import WEIGHTINGS

    remedy = "a registered name must also be listed in foodmtl/config/names.py"
    assert sorted(WEIGHTING_NAMES) == WEIGHTINGS.names(), remedy
    assert WEIGHTINGS.aliases == WEIGHTING_ALIASES and set(WEIGHTING_ALIASES.values()) <= set(WEIGHTING_NAMES)


def test_every_data_set_module_is_found_by_name_and_keeps_the_contract():
    """A data set is one module of foodmtl/data/sets: the config's name check lists the folder, and
    every module listed has ``load(root, options)``."""
    import inspect

    from foodmtl.data import sets

    names = sets.names()
    assert {"food101", "foodx251", "food2k", "food1k", "synthfood", "nutrition5k", "coco_instances"} <= set(names)
    for name in names:
        assert list(inspect.signature(sets.get(name).load).parameters) == ["root", "options"], name
    assert sets.get("Food101").__name__ == "foodmtl.data.sets.food101"
    with pytest.raises(ConfigError, match="did you mean: food101"):
        load_config(None, ["data.dataset=food102"])


def test_decoder_names_and_options_are_checked_with_the_config():
    from foodmtl.models.decoders import OPTIONS, fcn, fpn, smp, unet  # noqa: F401  (registration)
    from foodmtl.models.decoders.registry import DECODERS

    assert sorted(OPTIONS) == DECODERS.names()
    assert load_config(None, ["model.decoder=DeepLabV3Plus"]).model.decoder == "deeplabv3plus"
    with pytest.raises(ConfigError, match="model.decoder: unknown segmentation decoder 'deeplab'; did you mean: "
                                          "deeplabv3, deeplabv3plus"):
        load_config(None, ["model.decoder=deeplab"])
    with pytest.raises(ConfigError, match="model.decoder_options.widht: not an option of decoder 'unet'"):
        load_config(None, ["model.decoder_options.widht=3"])


def test_shipped_timm_names_match_the_installed_timm():
    import timm

    from foodmtl.config import timm_names

    if timm.__version__ != timm_names.TIMM_VERSION:
        pytest.skip(f"timm {timm.__version__} installed; the list is of {timm_names.TIMM_VERSION} (checked late)")
    assert timm_names.TIMM_MODELS == set(timm.list_models())


def test_registry_ignores_case_and_rejects_names_that_differ_only_in_case():
    from foodmtl.utils.registry import Registry, UnknownNameError

    reg = Registry("thing", aliases={"Alias": "abc"})
    reg.register("abc")(1)
    assert reg.get("ABC") == reg.get("alias") == 1 and "aBc" in reg and "abd" not in reg
    with pytest.raises(ValueError, match="twice"):
        reg.register("ABC")(2)
    with pytest.raises(UnknownNameError, match="did you mean: abc"):
        reg.get("abd")
