"""User mistakes through the real ``foodmtl`` script: exit 2, one ``error: ...`` line, no traceback,
nothing written; config mistakes are reported before torch is imported."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from foodmtl.cli import main
from foodmtl.errors import DataError

ROOT = Path(__file__).parents[1]
FOODMTL = Path(sys.executable).with_name("foodmtl")
DEMO = "experiments/synthfood/demo.yaml"


def foodmtl(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.run([str(FOODMTL), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, first_line", [
    ([DEMO, "train.epoch=3"], "error: unknown config key 'train.epoch'; did you mean train.epochs"),
    ([DEMO, "train.epochs=abc"], "error: train.epochs=abc: expected an integer"),
    ([DEMO, "weighting.name=pcgard"],
     "error: weighting.name: unknown weighting strategy 'pcgard'; did you mean: pcgrad"),
    ([DEMO, "model.backbone=resnet-50"],
     "error: model.backbone: unknown timm backbone 'resnet-50'; did you mean: resnet50"),
    ([DEMO, "data.dataset=food-101"], "error: data.dataset: unknown dataset 'food-101'; did you mean: food101"),
    ([DEMO, "run=!!python/object/apply:os.getcwd []"], "error: override 'run=!!python/object/apply:os.getcwd []': "
                                                      "YAML tags are not allowed"),
    ([DEMO, "run=../escape"], "error: run='../escape' is not a safe folder name"),
    ([DEMO, "model.pretrained_file=/nope.safetensors"], "error: model.pretrained_file=/nope.safetensors: no such file"),
    (["missing.yaml"], "error: config file not found: missing.yaml"),
])
def test_train_user_errors(args, first_line, tmp_path):
    result = foodmtl("train", *args, f"output_dir={tmp_path / 'runs'}")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(first_line), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_argument_errors_read_like_the_others():
    result = foodmtl("train")
    assert result.returncode == 2
    assert result.stderr == ("error: foodmtl train: the following arguments are required: config "
                             "(see foodmtl train --help)\n")


def test_config_errors_come_before_the_heavy_imports():
    code = ("import sys; from foodmtl.cli import main; "
            f"rc = main(['train', '{DEMO}', 'train.epochs=abc']); "
            "print(rc, [m for m in ('torch', 'timm', 'torchmetrics') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "[]"], result.stderr


def test_config_prints_the_resolved_config_with_names_as_registered(tmp_path):
    result = foodmtl("config", DEMO, "weighting.name=UW", "model.backbone=tu-resnet50", "train.epochs=3")
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    demo = yaml.safe_load((ROOT / DEMO).read_text())
    assert (printed["weighting"]["name"], printed["model"]["backbone"]) == ("uncertainty", "resnet50")
    assert printed["train"]["epochs"] == 3 and printed["experiment"] == demo["experiment"]
    assert printed["data"]["image_size"] == demo["data"]["image_size"]
    (tmp_path / "printed.yaml").write_text(result.stdout)  # what it prints loads back as the same config
    again = foodmtl("config", str(tmp_path / "printed.yaml"))
    assert again.returncode == 0 and again.stdout == result.stdout


@pytest.mark.parametrize("command", ["train", "eval", "predict", "embed", "sweep", "table", "plot", "config"])
def test_every_command_help_shows_an_example_and_defaults(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert f"example:\n  foodmtl {command} " in out
    if command in ("predict", "embed", "table", "plot", "sweep"):
        assert "(default: " in out


def test_data_errors_are_user_errors(monkeypatch, capsys):
    from foodmtl.commands import config

    def bad_data(args):
        raise DataError("data/food/meta/train.txt", "unknown class 'pizzza'", line=7)

    monkeypatch.setattr(config, "run", bad_data)
    assert main(["config", DEMO]) == 2
    assert capsys.readouterr().err == "error: data/food/meta/train.txt, line 7: unknown class 'pizzza'\n"


def test_bugs_keep_their_traceback(monkeypatch):
    from foodmtl.commands import config

    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(config, "run", bug)
    with pytest.raises(ZeroDivisionError):
        main(["config", DEMO])
