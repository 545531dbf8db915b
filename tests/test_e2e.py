"""A real (tiny) training run through the CLI entry points, checked from its files."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from foodmtl.cli import main
from foodmtl.config import load_config
from foodmtl.engine.trainer import train
from foodmtl.tracking.local import read_jsonl

TINY = Path(__file__).resolve().parents[1] / "experiments" / "synthfood" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny_run(synthfood_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(TINY, [f"data.root={synthfood_root}", f"output_dir={out}", "run=r0", "train.epochs=4"])
    run_dir, final = train(cfg)
    return run_dir, final


def test_run_folder_has_every_artifact(tiny_run):
    run_dir, final = tiny_run
    for name in ["config.yaml", "metrics.jsonl", "summary.json", "checkpoints/last.pt", "checkpoints/best.pt"]:
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["final"] == pytest.approx(final)
    assert summary["steps"] > 0 and summary["skipped_images"] == 0
    assert set(final) >= {"dish/top1", "category/top1", "cuisine/top1", "ingredients/f1_micro", "ingredients/mAP"}
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1


def test_training_loss_goes_down_and_weights_are_logged(tiny_run):
    records = read_jsonl(tiny_run[0] / "metrics.jsonl")
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    assert len(losses) >= 12
    k = len(losses) // 4
    assert sum(losses[-k:]) / k < 0.8 * sum(losses[:k]) / k
    assert all(f"weight/{t}" in records[0] for t in ["dish", "category", "cuisine", "ingredients"])
    evals = [r for r in records if "eval/dish/top1" in r]
    assert len(evals) == 4


def test_eval_command_reproduces_the_final_metrics(tiny_run, tmp_path, capsys):
    run_dir, final = tiny_run
    assert main(["eval", str(run_dir / "checkpoints" / "last.pt"), "--json", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text()) == pytest.approx(final, abs=1e-6)
    assert "dish" in capsys.readouterr().out


def test_missing_data_names_path_and_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "foodmtl", "train", str(TINY), f"data.root={tmp_path}/nope",
                           f"output_dir={tmp_path}"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{tmp_path}/nope" in proc.stderr and "data_prep/make_synthfood.py --out" in proc.stderr


@pytest.mark.parametrize("override, expected", [("model.backbone=resnet_18", "resnet18"),
                                                ("weighting.name=uncertainity", "uncertainty")])
def test_unknown_names_are_listed(synthfood_root, tmp_path, capsys, override, expected):
    code = main(["train", str(TINY), f"data.root={synthfood_root}", f"output_dir={tmp_path}", override])
    assert code == 2
    assert expected in capsys.readouterr().err


def test_resuming_with_other_tasks_or_classes_is_refused(tiny_run, synthfood_root, capsys):
    run_dir, _ = tiny_run
    before = (run_dir / "metrics.jsonl").read_text()
    code = main(["train", str(TINY), f"data.root={synthfood_root}", f"resume={run_dir / 'checkpoints' / 'last.pt'}",
                 "tasks=[dish,category]"])
    assert code == 2
    assert "would change what the checkpoint means: tasks" in capsys.readouterr().err
    assert (run_dir / "metrics.jsonl").read_text() == before


def test_resuming_a_finished_run_keeps_its_final_metrics(tiny_run, synthfood_root):
    run_dir, final = tiny_run
    cfg = load_config(TINY, [f"data.root={synthfood_root}", f"resume={run_dir / 'checkpoints' / 'last.pt'}",
                             "train.epochs=4"])
    _, again = train(cfg)
    assert again == pytest.approx(final, abs=1e-6)
    assert json.loads((run_dir / "summary.json").read_text())["final"] == pytest.approx(final, abs=1e-6)


def test_fp16_with_a_strategy_that_is_not_scale_equivariant_is_refused(synthfood_root, tmp_path, capsys):
    code = main(["train", str(TINY), f"data.root={synthfood_root}", f"output_dir={tmp_path}",
                 "train.amp=fp16", "weighting.name=nashmtl"])
    assert code == 2 and "not scale-equivariant" in capsys.readouterr().err


def test_an_override_changes_only_its_own_key_of_the_trained_config(tiny_run, synthfood_root):
    from foodmtl.engine.inference import load_trained

    run_dir, _ = tiny_run
    _, cfg, _ = load_trained(run_dir / "checkpoints" / "last.pt", {"data": {"root": str(synthfood_root)}})
    trained = load_config(TINY)
    assert cfg.data.root == str(synthfood_root)
    assert (cfg.data.image_size, cfg.data.batch_size) == (trained.data.image_size, trained.data.batch_size)
