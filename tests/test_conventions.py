"""The conventions people already know: timm's summary.csv, W&B metric summaries and model
artifacts, SLURM shapes, progress bars on terminals only, relative data roots, one-line errors."""
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import yaml
from timm.utils.summary import update_summary

import wandb_records
from foodmtl.cli import main
from foodmtl.config import load_config, save_config
from foodmtl.tasks import task_options
from foodmtl.data.builder import build_data
from foodmtl.engine.distributed import DistInfo
from foodmtl.engine.evaluate import eval_loader, evaluate
from foodmtl.engine.trainer import train
from foodmtl.models.multitask import build_model
from foodmtl.utils.output import OutputError
from foodmtl.tasks import IGNORE_INDEX, metric_direction
from foodmtl.tracking import Tracker
from foodmtl.tracking import epoch_meter, progress as progress_module
from foodmtl.tracking.local import read_jsonl
from foodmtl.tracking.summary_csv import SummaryCsv, epoch_row, read_summary
from foodmtl.tracking.wandb_run import WandbWriter
from test_disk_full import file_size_limit

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"
SBATCH = ROOT / "experiments" / "slurm" / "train.sbatch"
CPU = DistInfo(0, 1, 0, torch.device("cpu"))


# ---- summary.csv ----------------------------------------------------------------------------
def rows_of(path: Path) -> list[dict[str, str]]:
    return read_summary(path)


def test_summary_csv_is_what_timms_update_summary_writes(tmp_path):
    epochs = [(0, {"loss": 2.5, "images_per_s": 120.25}, {"loss": 2.1, "dish/top1": 0.25}, 0.001),
              (1, {"loss": 1.75, "images_per_s": 130.5}, {"loss": 1.9, "dish/top1": 0.5}, 0.0005)]
    ours = SummaryCsv(tmp_path / "ours.csv")
    for epoch, train_metrics, eval_metrics, lr in epochs:
        ours.append(epoch_row(epoch, train_metrics, eval_metrics, lr))
        update_summary(epoch, train_metrics, eval_metrics, str(tmp_path / "timm.csv"), lr=lr)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "timm.csv").read_bytes()
    assert list(rows_of(tmp_path / "ours.csv")[0]) == ["epoch", "train_loss", "train_images_per_s", "eval_loss",
                                                        "eval_dish/top1", "lr"]


def test_a_resumed_tracker_keeps_the_finished_epochs_and_their_evaluations_only(tmp_path):
    tracker = Tracker(tmp_path, None)
    for epoch in range(3):  # 2 steps an epoch; epoch 2's evaluation came after the checkpoint at step 6
        for step in (2 * epoch + 1, 2 * epoch + 2):
            tracker.log({"train/loss": 1.0, "epoch": epoch}, step)
        tracker.log({"eval/dish/top1": epoch / 10, "epoch": epoch}, 2 * epoch + 2)
        tracker.epoch(epoch, {"loss": 1.0}, {"dish/top1": epoch / 10}, 0.1)
    tracker.finish()
    resumed = Tracker(tmp_path, None, resume_step=6, resume_epoch=2)  # a checkpoint at epoch 2's last step
    resumed.finish()
    assert [int(r["epoch"]) for r in rows_of(tmp_path / "summary.csv")] == [0, 1]
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records if "train/loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["epoch"] for r in records if "eval/dish/top1" in r] == [0, 1]


def test_a_full_disk_keeps_the_previous_summary_csv_whole(tmp_path):
    summary = SummaryCsv(tmp_path / "summary.csv")
    summary.append(epoch_row(0, {"loss": 1.0}, {"dish/top1": 0.5}, 0.1))
    before = (tmp_path / "summary.csv").read_bytes()
    with file_size_limit(len(before) + 10), pytest.raises(OutputError, match="summary.csv"):
        summary.append(epoch_row(1, {"loss": 0.5}, {"dish/top1": 0.75}, 0.05))
    assert (tmp_path / "summary.csv").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_epoch_meter_counts_every_ranks_images_over_the_epochs_time(monkeypatch):
    clock = iter([100.0, 104.0, 200.0, 201.0])
    monkeypatch.setattr(epoch_meter, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    meter = epoch_meter.EpochMeter(world=2)
    meter.add(16, 3.0)
    meter.add(16, 1.0)
    meter.stop()
    assert meter.record() == {"loss": 2.0, "images_per_s": 2 * 32 / 4.0}
    idle = epoch_meter.EpochMeter()  # resumed at the epoch's end: no step
    idle.stop()
    assert all(math.isnan(v) for v in idle.record().values())


def test_eval_loss_is_the_training_loss_over_every_labelled_sample(synthfood_root):
    cfg = load_config(TINY, [f"data.root={synthfood_root}", "tasks=[dish,ingredients]"])
    data = build_data(cfg.data, cfg.tasks, 0, task_options(cfg))
    torch.manual_seed(0)
    model = build_model(cfg.model, data.tasks).eval()
    metrics, _ = evaluate(model, eval_loader(data.eval, 7, 0, CPU), CPU)  # uneven batches
    outputs, targets = {"dish": [], "ingredients": []}, {"dish": [], "ingredients": []}
    with torch.no_grad():
        for batch in eval_loader(data.eval, len(data.eval), 0, CPU):
            logits = model(batch.images).logits
            for task in outputs:
                outputs[task].append(logits[task])
                targets[task].append(batch.targets[task])
    dish, dish_target = torch.cat(outputs["dish"]), torch.cat(targets["dish"])
    ingredients, ingredients_target = torch.cat(outputs["ingredients"]), torch.cat(targets["ingredients"])
    keep = dish_target != IGNORE_INDEX
    rows = ingredients_target[:, 0] != IGNORE_INDEX
    expected = {"dish/loss": F.cross_entropy(dish[keep], dish_target[keep]).item(),
                "ingredients/loss": F.binary_cross_entropy_with_logits(
                    ingredients[rows], ingredients_target[rows].float()).item()}
    assert {k: metrics[k] for k in expected} == pytest.approx(expected, rel=1e-5)
    assert metrics["loss"] == pytest.approx(sum(expected.values()), rel=1e-5)
    assert metric_direction("eval/loss") == metric_direction("eval/dish/loss") == "min"


@pytest.mark.slow
def test_summary_csv_and_evaluations_after_a_resume_at_an_epochs_last_step(synthfood_root, tmp_path, monkeypatch,
                                                                          caplog):
    """The checkpoint a kill leaves between an epoch's last step and its evaluation: every epoch
    once in summary.csv and metrics.jsonl, with the values of the uninterrupted run."""
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    overrides = [f"data.root={synthfood_root}", f"output_dir={tmp_path}", "run=r", "train.epochs=2",
                 "train.checkpoint_every=1", "train.keep_checkpoints=100", "tracking.log_checkpoints=true"]
    run_dir, _ = train(load_config(TINY, overrides))
    uninterrupted = rows_of(run_dir / "summary.csv")
    history = read_jsonl(run_dir / "metrics.jsonl")
    steps = [r for r in history if "train/loss" in r]
    for row in uninterrupted:  # train_loss: the epoch's mean step loss; lr: its last step's
        epoch = [r for r in steps if r["epoch"] == int(row["epoch"])]
        assert float(row["train_loss"]) == pytest.approx(sum(r["train/loss"] for r in epoch) / len(epoch))
        assert float(row["lr"]) == pytest.approx(epoch[-1]["lr"])
        assert float(row["train_images_per_s"]) > 0
    files = {name: (run_dir / "checkpoints" / name).stat().st_size for name in ("best.pt", "last.pt")}
    logged = [(r["artifact"]["type"], r["artifact"]["name"], sorted(r["artifact"]["aliases"]),
               {c["path"]: int(c["size"]) for c in r["artifact"]["manifest"]["contents"]})
              for r in artifact_records(run_dir)]
    model = f"model-{torch.load(run_dir / 'checkpoints' / 'last.pt', weights_only=True)['wandb_id']}"
    assert logged == [("model", model, ["best", "latest"], {"best.pt": files["best.pt"]}),
                      ("model", model, ["last", "latest"], {"last.pt": files["last.pt"]})]

    first_epoch_end = max(r["step"] for r in steps if r["epoch"] == 0)
    checkpoints = run_dir / "checkpoints"
    shutil.copy(checkpoints / f"step-{first_epoch_end:08d}.pt", checkpoints / "last.pt")
    with caplog.at_level("INFO", logger="foodmtl.engine.trainer"):
        train(load_config(TINY, overrides + ["resume=auto"]))
    assert "no step left in the epoch after the resume" in caplog.text and " nan" not in caplog.text
    resumed = rows_of(run_dir / "summary.csv")
    assert [r["epoch"] for r in resumed] == ["0", "1"]
    assert resumed[0]["train_loss"] == ""  # no step ran in epoch 0 after the resume
    assert float(resumed[1]["train_loss"]) == pytest.approx(float(uninterrupted[1]["train_loss"]), abs=1e-6)
    for before, after in zip(uninterrupted, resumed):
        evals = [k for k in before if k.startswith("eval_")]
        assert {k: float(after[k]) for k in evals} == pytest.approx({k: float(before[k]) for k in evals}, abs=1e-6)
    evaluations = [r["epoch"] for r in read_jsonl(run_dir / "metrics.jsonl") if "eval/loss" in r]
    assert evaluations == [0, 1]


@pytest.mark.slow
def test_after_kill_9_and_resume_auto_summary_csv_holds_every_epoch_once(synthfood_root, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    summary = out / "synthfood-tiny" / "killed" / "summary.csv"
    command = [sys.executable, "-m", "foodmtl", "train", str(TINY), f"data.root={synthfood_root}", f"output_dir={out}",
               "run=killed", "train.epochs=3", "train.checkpoint_every=3", "tracking.wandb=disabled"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not (summary.exists() and len(rows_of(summary)) >= 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # right after epoch 1's row, before or after its checkpoint
    assert proc.wait(timeout=60) == -signal.SIGKILL, proc.stderr.read()[-2000:]
    monkeypatch.chdir(tmp_path)  # resumed in this process, from the same folder: one Python start fewer
    assert main(command[3:] + ["resume=auto"]) == 0
    assert [r["epoch"] for r in rows_of(summary)] == ["0", "1", "2"]
    evaluations = [r["epoch"] for r in read_jsonl(summary.with_name("metrics.jsonl")) if "eval/loss" in r]
    assert evaluations == [0, 1, 2]


# ---- W&B --------------------------------------------------------------------------------------
def artifact_records(run_dir: Path) -> list[dict]:
    return [r for r in wandb_records.records(wandb_records.segments(run_dir)[-1]) if r["type"] == "artifact"]


def test_wandb_summaries_are_each_metrics_best_by_its_direction_and_the_last(tmp_path):
    writer = WandbWriter("offline", tmp_path, "r", {}, "p")
    writer.log({"step": 1, "train/loss": 2.0, "eval/dish/top1": 0.5, "eval/dish/loss": 1.5, "eval/loss": 3.0,
                "eval/mass/mae": 40.0})
    writer.finish()
    defined = {r["metric"]["name"]: r["metric"] for r in wandb_records.records(wandb_records.segments(tmp_path)[-1])
               if r["type"] == "metric" and "name" in r["metric"]}
    for key in ("eval/dish/top1", "eval/dish/loss", "eval/loss", "eval/mass/mae"):
        assert defined[key]["summary"] == {metric_direction(key): True, "last": True}
        assert defined[key]["step_metric"] == "step"
    assert [defined[k]["summary"] for k in ("eval/dish/top1", "eval/mass/mae")] == [
        {"max": True, "last": True}, {"min": True, "last": True}]
    assert "train/loss" not in defined  # per-step losses keep W&B's default (last) summary


def test_checkpoints_are_no_artifacts_unless_asked(synthfood_root, tmp_path):
    run_dir, _ = train(load_config(TINY, [f"data.root={synthfood_root}", f"output_dir={tmp_path}", "run=r",
                                          "train.epochs=1", "train.max_steps=1"]))
    assert artifact_records(run_dir) == []


def test_a_bad_wandb_mode_is_refused_before_the_run_folder_is_claimed(synthfood_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "onlin")
    assert main(["train", str(TINY), f"data.root={synthfood_root}", f"output_dir={tmp_path}/runs"]) == 2
    assert "WANDB_MODE='onlin'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def no_wandb_login(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections are refused


@pytest.mark.parametrize("command", [["table"], ["plot", "--out", "figures"]])
def test_reading_wandb_without_key_or_server_is_one_error_line(no_wandb_login, monkeypatch, capsys, command):
    argv = [command[0], "wandb:someone/foodmtl", *command[1:]]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: wandb:someone/foodmtl: no W&B API key (set WANDB_API_KEY or run `wandb login`), or read local "
        "run folders instead (e.g. runs/<group>)"]
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "not reachable" in err[0] and err[0].startswith("error: wandb:someone/foodmtl: W&B server")


def test_a_wandb_api_error_is_one_line(monkeypatch, capsys):
    import wandb

    from foodmtl.analysis import runs
    from foodmtl.analysis import wandb_api

    def failing(path, group=None):
        raise wandb.errors.CommError("Could not find project foodmtl\nfull GraphQL response ...")

    monkeypatch.setattr(wandb_api, "require_api", lambda source: None)
    monkeypatch.setattr(runs, "wandb_runs", failing)
    assert main(["table", "wandb:someone/foodmtl"]) == 2
    assert capsys.readouterr().err == "error: wandb:someone/foodmtl: W&B says: Could not find project foodmtl\n"


# ---- SLURM --------------------------------------------------------------------------------------
FAKE = {
    "srun": '#!/bin/bash\nwhile [[ $1 == --* ]]; do shift; done\nexec "$@"\n',
    "scontrol": '#!/bin/bash\nif [ "$1" = show ]; then echo node1; fi\n',
    ".venv/bin/torchrun": '#!/bin/bash\necho "OMP_NUM_THREADS=$OMP_NUM_THREADS $*"\n',
}


@pytest.mark.parametrize("allocation, expected", [
    ({"SLURM_GPUS_PER_NODE": "a100:2", "SLURM_CPUS_PER_TASK": "12"}, ("2", "6")),
    ({"SLURM_GPUS_ON_NODE": "3", "SLURM_CPUS_PER_TASK": "12"}, ("3", "4")),
    ({"SLURM_GPUS_PER_NODE": "4", "SLURM_CPUS_PER_TASK": "32", "NPROC_PER_NODE": "1", "OMP_NUM_THREADS": "5"},
     ("1", "5")),
])
def test_train_sbatch_takes_its_shape_from_the_allocation(tmp_path, allocation, expected):
    for name, text in FAKE.items():
        path = tmp_path / "bin" / name if "/" not in name else tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "OMP_", "NPROC"))}
    env.update(PATH=f"{tmp_path / 'bin'}:{env['PATH']}", SLURM_JOB_ID="7", SLURM_JOB_NODELIST="node1",
               SLURM_JOB_NUM_NODES="1", **allocation)
    out = subprocess.run(["bash", str(SBATCH), "cfg.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if "--nproc_per_node" in line)
    assert f"--nproc_per_node={expected[0]}" in line.split() and line.startswith(f"OMP_NUM_THREADS={expected[1]} ")


# ---- progress bars, relative paths, atomic writes -------------------------------------------------
def test_progress_bars_show_on_a_terminal_only(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert progress_module.progress(range(3)).disable
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert not progress_module.progress(range(3)).disable
    assert progress_module.progress(range(3), enabled=False).disable


def test_eval_shows_a_progress_bar_on_a_terminal(synthfood_root, capsys, monkeypatch):
    cfg = load_config(TINY, [f"data.root={synthfood_root}", "tasks=[dish]", "data.limit=16"])
    data = build_data(cfg.data, cfg.tasks, 0, task_options(cfg))
    model = build_model(cfg.model, data.tasks)
    for terminal in (False, True):
        monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
        evaluate(model, eval_loader(data.eval, 4, 0, CPU), CPU, show_progress=True)
        assert ("eval:" in capsys.readouterr().err) == terminal


def test_verify_shows_a_progress_bar_on_a_terminal(tmp_path, capsys, monkeypatch):
    import importlib

    from miniatures import make_food101

    monkeypatch.syspath_prepend(str(ROOT / "data_prep"))
    verify = importlib.import_module("verify")
    root = make_food101(tmp_path / "food-101")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert verify.main(["--dataset", "food101", "--root", str(root), "--workers", "1"]) == 0
    assert "checking images" in capsys.readouterr().err


def test_eval_from_another_folder_finds_the_runs_relative_data_root(synthfood_root, tmp_path, monkeypatch, capsys):
    launch, elsewhere = tmp_path.resolve() / "project", tmp_path.resolve() / "elsewhere"
    (launch / "data").mkdir(parents=True)
    elsewhere.mkdir()
    (launch / "data" / "synthfood").symlink_to(synthfood_root)
    monkeypatch.chdir(launch)
    run_dir, _ = train(load_config(TINY, ["data.root=data/synthfood", f"output_dir={tmp_path}/runs", "run=rel",
                                          "tasks=[dish]", "train.epochs=1", "train.max_steps=1",
                                          "tracking.wandb=disabled"]))
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["launch_dir"] == str(launch)
    checkpoint = str(run_dir / "checkpoints" / "best.pt")
    assert main(["eval", checkpoint, "--cpu", "--json", str(tmp_path / "here.json")]) == 0
    monkeypatch.chdir(elsewhere)
    assert main(["eval", checkpoint, "--cpu", "--json", str(tmp_path / "there.json")]) == 0
    assert json.loads((tmp_path / "there.json").read_text()) == json.loads((tmp_path / "here.json").read_text())
    capsys.readouterr()
    (launch / "data" / "synthfood").unlink()
    assert main(["eval", checkpoint, "--cpu"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: data.root=data/synthfood not found: no {launch}/data/synthfood (where the run was started) nor "
        f"{elsewhere}/data/synthfood (here); pass data.root=PATH"]
    assert main(["eval", checkpoint, f"data.root={synthfood_root}", "--cpu"]) == 0


def test_save_config_on_a_full_disk_is_an_output_error_and_leaves_no_partial_file(tmp_path):
    path = tmp_path / "config.yaml"
    with file_size_limit(100), pytest.raises(OutputError, match=f"cannot write {path}"):
        save_config(load_config(TINY), path)
    assert list(tmp_path.iterdir()) == []


def test_the_eval_loss_can_be_the_best_metric(synthfood_root, tmp_path, capsys):
    assert main(["train", str(TINY), f"data.root={synthfood_root}", f"output_dir={tmp_path}", "tasks=[dish]",
                 "train.best_metric=dish/los"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" in err and "dish/loss" in err and not tmp_path.joinpath("synthfood-tiny").exists()
    run_dir, _ = train(load_config(TINY, [f"data.root={synthfood_root}", f"output_dir={tmp_path}", "run=l",
                                          "tasks=[dish]", "train.best_metric=loss", "train.epochs=2",
                                          "train.max_steps=5", "tracking.wandb=disabled"]))
    losses = [float(r["eval_loss"]) for r in rows_of(run_dir / "summary.csv")]
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["metrics"]["loss"] == min(losses)  # lower is better
