"""Exact resume after SIGKILL / SIGTERM, NaN handling, and crash-safe checkpoints."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from foodmtl.config import load_config
from foodmtl.engine import checkpoint as checkpoint_module
from foodmtl.engine.checkpoint import load_checkpoint
from foodmtl.engine.preemption import EXIT_PREEMPTED
from foodmtl.engine.step import NonFiniteLossError
from foodmtl.engine.trainer import train

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"


def args(root, out, run, *extra):
    return [f"data.root={root}", f"output_dir={out}", f"run={run}", "train.epochs=3",
            "train.checkpoint_every=2", "weighting.name=uncertainty", "model.drop_rate=0.2", *extra]


def start(overrides):
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.Popen([sys.executable, "-m", "foodmtl", "train", str(TINY), *overrides],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


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


@pytest.fixture(scope="module")
def reference(synthfood_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    proc = start(args(synthfood_root, out, "full"))
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]
    return final_of(out, "full")


@pytest.mark.parametrize("sig, code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, EXIT_PREEMPTED)])
def test_interrupted_then_resumed_run_matches_uninterrupted(reference, synthfood_root, tmp_path, sig, code):
    proc = start(args(synthfood_root, tmp_path, "cut"))
    last = tmp_path / "synthfood-tiny" / "cut" / "checkpoints" / "last.pt"
    wait_for_checkpoint(proc, last, min_step=2)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == code
    state = load_checkpoint(last)["train_state"]
    assert state["step"] >= 2
    resumed = start(args(synthfood_root, tmp_path, "cut", "resume=auto"))
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()[-2000:]
    assert final_of(tmp_path, "cut") == pytest.approx(reference, abs=1e-6)


def test_nan_loss_names_task_and_step_and_keeps_last_checkpoint(synthfood_root, tmp_path, monkeypatch):
    from foodmtl.engine import objective

    real, calls = objective.task_loss, {"n": 0}

    def poisoned(task, logits, target, label_smoothing=0.0):
        loss = real(task, logits, target, label_smoothing)
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

    def poisoned(task, logits, target, label_smoothing=0.0):
        loss = real(task, logits, target, label_smoothing)
        if task.name == "dish" and logits.requires_grad:
            calls["n"] += 1
            if calls["n"] in (3, 7):
                return loss * float("nan")
        return loss

    monkeypatch.setattr(objective, "task_loss", poisoned)
    run_dir, final = train(load_config(TINY, args(synthfood_root, tmp_path, "skip", "train.on_nonfinite=skip")))
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
        Path(f).write_bytes(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash)
    with pytest.raises(OSError):
        checkpoint_module.save_checkpoint({"objective": {"w": torch.ones(3)}, "config": {}}, path)
    assert torch.equal(load_checkpoint(path)["objective"]["w"], torch.zeros(3))
