"""Exact resume after SIGKILL / SIGTERM, NaN handling, and crash-safe checkpoints."""
import hashlib
import json
import logging
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import wandb_records
from foodmtl.cli import main
from foodmtl.config import load_config
from foodmtl.engine import checkpoint as checkpoint_module
from foodmtl.engine.checkpoint import load_checkpoint
from foodmtl.errors import PREEMPTED as EXIT_PREEMPTED
from foodmtl.engine.step import NonFiniteLossError
from foodmtl.engine.trainer import train, warmup_cosine
from foodmtl.tracking.local import read_jsonl

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"


def args(root, out, run, *extra):
    return [f"data.root={root}", f"output_dir={out}", f"run={run}", "train.epochs=3",
            "train.checkpoint_every=2", "weighting.name=uncertainty", "model.drop_rate=0.2", *extra]


def start(overrides):
    """A training in its own process, with conftest.py's thread count (one under make test's workers)."""
    return subprocess.Popen([sys.executable, "-m", "foodmtl", "train", str(TINY), *overrides],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_checkpoint(proc, path: Path, min_step: int) -> None:
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if path.exists():
            try:
                if load_checkpoint(path)["train_state"]["step"] >= min_step:
                    return
            except checkpoint_module.CheckpointError:
                pass  # being replaced right now
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint at step >= {min_step}: {proc.stderr.read()[-2000:] if proc.stderr else ''}")


def final_of(out, run):
    return json.loads((out / "synthfood-tiny" / run / "summary.json").read_text())["final"]


def train_here(overrides) -> None:
    """A training in this process (same thread count): only the interrupted run needs its own, so
    a reference and a resumed run skip a Python start each."""
    assert main(["train", str(TINY), *overrides]) == 0


@pytest.fixture(scope="module")
def reference_run(synthfood_root, tmp_path_factory):
    """A finished 3-epoch run; tests that continue from it must leave it as it is. In its own process:
    its W&B logs/debug-core.log links to its W&B service's log, which a later run in this process
    would write to."""
    out = tmp_path_factory.mktemp("runs")
    proc = start(args(synthfood_root, out, "full"))
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]
    return out / "synthfood-tiny" / "full"


@pytest.fixture(scope="module")
def reference(reference_run):
    return final_of(reference_run.parent.parent, "full")


@pytest.mark.parametrize("sig, code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, EXIT_PREEMPTED)])
def test_interrupted_then_resumed_run_matches_uninterrupted(reference, synthfood_root, tmp_path, sig, code):
    proc = start(args(synthfood_root, tmp_path, "cut"))
    last = tmp_path / "synthfood-tiny" / "cut" / "checkpoints" / "last.pt"
    wait_for_checkpoint(proc, last, min_step=2)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == code
    state = load_checkpoint(last)["train_state"]
    assert state["step"] >= 2
    train_here(args(synthfood_root, tmp_path, "cut", "resume=auto"))
    assert final_of(tmp_path, "cut") == pytest.approx(reference, abs=1e-6)


# A frozen stem + first stage that joins training at epoch 3 of 4 (steps 9-16), and EMA.
TRANSFER = ["model.freeze=stages:1", "train.unfreeze_at=2", "train.ema_decay=0.9", "train.epochs=4"]


@pytest.fixture(scope="module")
def transfer_reference(synthfood_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer")
    train_here(args(synthfood_root, out, "full", *TRANSFER))
    return out / "synthfood-tiny" / "full"


@pytest.mark.parametrize("cut_at, unfrozen", [(2, False), (10, True)], ids=["before-unfreeze", "after-unfreeze"])
def test_killed_run_with_ema_and_unfreeze_resumes_exactly(transfer_reference, synthfood_root, tmp_path, cut_at,
                                                           unfrozen):
    proc = start(args(synthfood_root, tmp_path, "cut", *TRANSFER))
    last = tmp_path / "synthfood-tiny" / "cut" / "checkpoints" / "last.pt"
    wait_for_checkpoint(proc, last, min_step=cut_at)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=120) == -signal.SIGKILL
    cut = load_checkpoint(last)
    assert cut["train_state"]["unfrozen"] is unfrozen and "train_objective" in cut
    train_here(args(synthfood_root, tmp_path, "cut", *TRANSFER, "resume=auto"))
    assert final_of(tmp_path, "cut") == final_of(transfer_reference.parent.parent, "full")
    again, reference = load_checkpoint(last), load_checkpoint(transfer_reference / "checkpoints" / "last.pt")
    for part in ("objective", "train_objective"):  # the EMA's weights and the raw ones, bit for bit
        assert all(torch.equal(v, again[part][k]) for k, v in reference[part].items()), part


def test_nan_loss_names_task_and_step_and_keeps_last_checkpoint(synthfood_root, tmp_path, monkeypatch):
    from foodmtl.engine import objective

    real, calls = objective.task_loss, {"n": 0}

    def poisoned(task, logits, target):
        loss = real(task, logits, target)
        if task.name == "cuisine" and logits.requires_grad:
            calls["n"] += 1
            if calls["n"] == 5:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(objective, "task_loss", poisoned)
    cfg = load_config(TINY, args(synthfood_root, tmp_path, "nan"))
    with pytest.raises(NonFiniteLossError, match=r"cuisine.*step 5"):
        train(cfg)
    kept = load_checkpoint(tmp_path / "synthfood-tiny" / "nan" / "checkpoints" / "last.pt")
    assert kept["train_state"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in kept["objective"].values() if v.is_floating_point())


def test_nan_loss_can_skip_the_step(synthfood_root, tmp_path, monkeypatch):
    from foodmtl.engine import objective

    real, calls = objective.task_loss, {"n": 0}

    def poisoned(task, logits, target):
        loss = real(task, logits, target)
        if task.name == "dish" and logits.requires_grad:
            calls["n"] += 1
            if calls["n"] in (3, 7):
                return loss * float("nan")
        return loss

    monkeypatch.setattr(objective, "task_loss", poisoned)
    run_dir, final = train(load_config(TINY, args(synthfood_root, tmp_path, "skip", "train.on_nonfinite=skip",
                                               "train.max_steps=8")))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["nonfinite_skipped"] == 2
    assert summary["steps"] == calls["n"] - 2
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")["objective"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert all(v == v for v in final.values())


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint_module.save_checkpoint({"objective": {"w": torch.zeros(3)}, "config": {}}, path)

    def crash(obj, f, *a, **k):
        f.write(b"PK\x03\x04 partial")  # torch.save writes into the open temporary file
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash)
    with pytest.raises(OSError):
        checkpoint_module.save_checkpoint({"objective": {"w": torch.ones(3)}, "config": {}}, path)
    assert torch.equal(load_checkpoint(path)["objective"]["w"], torch.zeros(3))


# ---- continuing from a checkpoint: new runs, saved configs, weights-only best.pt ---------------
def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def wandb_config(run_dir: Path) -> dict:
    """The config the W&B run recorded, read back with W&B's own reader."""
    [run_file] = wandb_records.segments(run_dir)
    return next(r["run"]["config"]["update"] for r in wandb_records.records(run_file) if r["type"] == "run")


def test_resume_from_a_path_continues_into_the_named_new_run_and_never_writes_the_source(
        reference_run, synthfood_root):
    before = hashes(reference_run)
    source = reference_run / "checkpoints" / "last.pt"
    step = load_checkpoint(source)["train_state"]["step"]
    code = main(["train", str(TINY), f"data.root={synthfood_root}", f"resume={source}", "run=longer",
                 "train.epochs=4", "optim.lr=0.006", "resume_override=true"])
    assert code == 0
    assert hashes(reference_run) == before
    run = reference_run.parent / "longer"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["resumed_from"] == str(source.resolve()) and config["run"] == "longer"
    assert config["resume_changes"] == [f"optim.lr: 0.003 -> 0.006 (at step {step})",
                                        f"train.epochs: 3 -> 4 (at step {step})"]
    assert config["train"]["epochs"] == 4 and config["resume_override"] is False
    # The overridden schedule applies from the restored step: 4 epochs x 4 steps, half an epoch of warm-up.
    lrs = [(r["step"], r["lr"]) for r in read_jsonl(run / "metrics.jsonl") if "lr" in r]
    assert lrs and all(lr == pytest.approx(0.006 * warmup_cosine(16, 2)(s)) for s, lr in lrs)
    recorded = wandb_config(run)
    assert recorded["resumed_from"] == str(source.resolve()) and recorded["resume_changes"] == config["resume_changes"]
    evals = [r for r in read_jsonl(run / "metrics.jsonl") if "eval/dish/top1" in r]
    assert len(evals) == 1 and evals[0]["step"] > step  # the fourth epoch, trained in the new run
    assert load_checkpoint(run / "checkpoints" / "last.pt")["train_state"]["epoch"] == 4


def test_resume_from_a_path_without_run_makes_a_new_default_named_run_and_says_so(
        reference_run, reference, synthfood_root, caplog):
    before, folders = hashes(reference_run), set(reference_run.parent.iterdir())
    source = reference_run / "checkpoints" / "last.pt"
    with caplog.at_level(logging.INFO, logger="foodmtl"):
        assert main(["train", str(TINY), f"data.root={synthfood_root}", f"resume={source}"]) == 0
    assert hashes(reference_run) == before
    [new] = set(reference_run.parent.iterdir()) - folders
    assert f"continuing {source}" in caplog.text and f"into the new run {new}" in caplog.text
    # Nothing was left to train: the new run records the restored model's evaluation and saves it.
    assert final_of(new.parent.parent, new.name) == pytest.approx(reference, abs=1e-6)
    assert (new / "checkpoints" / "last.pt").is_file() and (new / "checkpoints" / "best.pt").is_file()


@pytest.mark.parametrize("extra, named", [
    (["train.epochs=5", "weighting.name=uniform"], ["train.epochs (3 -> 5)", "weighting.name ('uncertainty' -> 'uniform')"]),
    (["optim.lr=0.01"], ["optim.lr (0.003 -> 0.01)"]),
])
def test_resume_refuses_overrides_that_change_the_checkpoints_meaning(reference_run, synthfood_root, capsys, extra,
                                                                      named):
    before = hashes(reference_run)
    out = reference_run.parent.parent
    code = main(["train", str(TINY), *args(synthfood_root, out, "full", "resume=auto", "tracking.wandb=disabled",
                                           "data.num_workers=0", *extra)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and all(n in err for n in named) and "resume_override=true" in err
    assert hashes(reference_run) == before


def test_a_checkpoint_that_does_not_fit_its_overridden_model_is_a_clean_error(reference_run, synthfood_root, capsys):
    folders = set(reference_run.parent.iterdir())
    code = main(["train", str(TINY), f"data.root={synthfood_root}", f"resume={reference_run / 'checkpoints' / 'last.pt'}",
                 "model.backbone=resnet18", "resume_override=true"])
    assert code == 2
    err = capsys.readouterr().err
    assert "does not fit the model" in err and "Traceback" not in err
    assert set(reference_run.parent.iterdir()) == folders  # no run folder was claimed


def test_resume_auto_without_a_previous_run_starts_fresh_and_says_so(synthfood_root, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="foodmtl"):
        code = main(["train", str(TINY), f"data.root={synthfood_root}", f"output_dir={tmp_path}", "run=first",
                     "resume=auto", "train.max_steps=1", "data.limit=32", "tracking.wandb=disabled"])
    assert code == 0
    assert f"no previous run of {tmp_path / 'synthfood-tiny' / 'first'}: starting fresh" in caplog.text
    assert yaml.safe_load((tmp_path / "synthfood-tiny" / "first" / "config.yaml").read_text())["resumed_from"] is None


def test_best_pt_holds_weights_only_serves_eval_and_predict_and_is_refused_for_resume(
        reference_run, synthfood_root, tmp_path, capsys):
    best, last = reference_run / "checkpoints" / "best.pt", reference_run / "checkpoints" / "last.pt"
    state = load_checkpoint(best)
    assert "optimizer" not in state and best.stat().st_size < last.stat().st_size / 2
    assert main(["eval", str(best), "--cpu", "--json", str(tmp_path / "best.json")]) == 0
    assert json.loads((tmp_path / "best.json").read_text()) == state["metrics"]
    image = next((synthfood_root / "food101" / "images").rglob("*.jpg"))
    assert main(["predict", str(best), str(image), "--cpu"]) == 0
    capsys.readouterr()
    assert main(["train", str(TINY), f"data.root={synthfood_root}", f"resume={best}"]) == 2
    assert "holds weights only (no optimizer" in capsys.readouterr().err


TRAINING_DOC = ROOT / "docs" / "training.md"  # where the resume example lives (the README links it)


def documented_commands(marker: str) -> list[list[str]]:
    """The documented shell lines that contain ``marker``, continuation lines joined, comments dropped."""
    text = TRAINING_DOC.read_text().replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines()
            if marker in line and line.lstrip().startswith("foodmtl ")]


def test_readme_resume_example_works_as_written(tmp_path, monkeypatch):
    """Run where data/synthfood is a small SynthFood (36 training images: one batch of the demo's 32)."""
    from foodmtl.synthfood.generate import generate_synthfood

    generate_synthfood(tmp_path / "data" / "synthfood", dishes=6, per_dish=9, size=64, seed=0)
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    monkeypatch.chdir(tmp_path)
    first, again = documented_commands("run=manual-x2")
    assert first[:2] == again[:2] == ["foodmtl", "train"]
    assert "weighting.name=manual" in first and "resume=auto" in again

    assert main(first[1:]) == 0
    folder = tmp_path / "runs" / "synthfood-demo" / "manual-x2"
    config, records, summary = ((folder / name).read_text() for name in ("config.yaml", "metrics.jsonl", "summary.json"))
    assert yaml.safe_load(config)["weighting"]["name"] == "manual"
    assert main(again[1:]) == 0
    assert (folder / "config.yaml").read_text() == config  # the run's own config, not the YAML's
    assert (folder / "metrics.jsonl").read_text() == records
    assert json.loads((folder / "summary.json").read_text())["final"] == json.loads(summary)["final"]
