"""Preemption under SLURM + torchrun really requeues, and Ctrl-C stops with a checkpoint.

The SLURM test runs the real experiments/slurm/train.sbatch with a real torchrun (1 and 2 ranks,
CPU) and fake ``srun``/``scancel``/``scontrol`` on PATH: srun runs its command as a job step,
scancel signals every process of the step (as slurmstepd signals a step's cgroup), scontrol
records the requeue. The test sends SIGUSR1 to the script, as ``--signal=B:USR1@120`` does.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import wandb_records
from foodmtl.cli import main
from foodmtl.engine.checkpoint import load_checkpoint
from foodmtl.engine.distributed import DistInfo
from foodmtl.engine.preemption import PreemptionFlag
from foodmtl.tracking.local import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"
SBATCH = ROOT / "experiments" / "slurm" / "train.sbatch"
JOB = "4242"

FAKE_SLURM = {
    "srun": """#!/bin/bash
# Runs its command as one job step (recorded for scancel); the options used are all --key=value.
while [[ $1 == --* ]]; do shift; done
echo $$ >> "$FAKE_SLURM/steps"
exec "$@"
""",
    "scancel": """#!/bin/bash
# scancel --signal=SIG JOB: every process of every step gets SIG, as from slurmstepd (cgroup).
echo "scancel $*" >> "$FAKE_SLURM/calls"
tree() { echo "$1"; for child in $(pgrep -P "$1"); do tree "$child"; done; }
for step in $(cat "$FAKE_SLURM/steps"); do kill -s "${1#--signal=}" $(tree "$step") 2>/dev/null; done
exit 0
""",
    "scontrol": """#!/bin/bash
echo "scontrol $*" >> "$FAKE_SLURM/calls"
if [ "$1" = show ]; then echo 127.0.0.1; fi
""",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_slurm_job(tmp_path: Path, nproc: int) -> dict[str, str]:
    """The environment of a batch script on one node of job JOB, run from ``tmp_path``."""
    bin_dir, state = tmp_path / "bin", tmp_path / "slurm"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in FAKE_SLURM.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")  # the script runs .venv/bin/torchrun from its folder
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SLURM": str(state),
            "SLURM_JOB_ID": JOB, "SLURM_JOB_NODELIST": "node1", "SLURM_JOB_NUM_NODES": "1",
            "SLURM_GPUS_PER_NODE": str(nproc), "RDZV_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}


def wait_for_training(proc: subprocess.Popen, metrics: Path) -> None:
    """Until the first step is logged: signal handlers are installed by then."""
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and metrics.read_text().strip():
            return
        time.sleep(0.05)
    raise AssertionError(f"training never logged a step: {proc.communicate()[0][-3000:]}")


def assert_wandb_holds_every_record(run_dir: Path) -> None:
    """The newest W&B segment of the run (the one `wandb sync` keeps) has metrics.jsonl's history."""
    logged = wandb_records.history(wandb_records.segments(run_dir)[-1])
    kept = read_jsonl(run_dir / "metrics.jsonl")
    assert len(logged) == len(kept)
    assert all(wandb_records.same_record(a, b) for a, b in zip(logged, kept)), (logged, kept)


@pytest.mark.slow
@pytest.mark.parametrize("nproc", [1, 2])
def test_preempted_torchrun_job_checkpoints_requeues_and_resumes(synthfood_root, tmp_path, nproc):
    env = fake_slurm_job(tmp_path, nproc)
    out = tmp_path / "runs"
    command = ["bash", str(SBATCH), str(TINY), f"data.root={synthfood_root}", f"output_dir={out}",
               "train.epochs=6", "train.log_every=1"]
    run_dir = out / "synthfood-tiny" / f"slurm-{JOB}"
    calls, marker = tmp_path / "slurm" / "calls", tmp_path / f"slurm-{JOB}.preempted"

    job = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    wait_for_training(job, run_dir / "metrics.jsonl")
    job.send_signal(signal.SIGUSR1)
    log = job.communicate(timeout=600)[0]
    assert f"scancel --signal=TERM {JOB}" in calls.read_text(), log[-3000:]
    assert f"scontrol requeue {JOB}" in calls.read_text(), log[-3000:]
    step = load_checkpoint(run_dir / "checkpoints" / "last.pt")["train_state"]["step"]
    assert json.loads(marker.read_text())["step"] == step >= 1
    assert f"preempted (SIGTERM/SIGUSR1) at step {step}: checkpoint saved" in log
    leftovers = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert not leftovers, "workers outlived the job"

    calls.unlink()  # the requeued job: same id, so the same run=slurm-<id>; this time it is not signalled
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "requeue" not in calls.read_text() and not marker.exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 6
    train_steps = [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if "train/loss" in r]
    assert train_steps == list(range(1, summary["steps"] + 1))  # continued, every step logged once
    assert_wandb_holds_every_record(run_dir)


@pytest.mark.slow
def test_ctrl_c_checkpoints_and_exits_130_with_one_line(synthfood_root, tmp_path):
    out = tmp_path / "runs"
    run_dir = out / "synthfood-tiny" / "ctrl-c"
    # Its own session, signalled as a group like a terminal's Ctrl-C: the DataLoader worker gets it too.
    proc = subprocess.Popen([sys.executable, "-m", "foodmtl", "train", str(TINY), f"data.root={synthfood_root}",
                             f"output_dir={out}", "run=ctrl-c", "train.epochs=6", "train.log_every=1",
                             "data.num_workers=1"], cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for_training(proc, run_dir / "metrics.jsonl")
    os.killpg(proc.pid, signal.SIGINT)
    stderr = proc.communicate(timeout=600)[1]
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    [line] = [line for line in stderr.splitlines() if "Ctrl-C" in line]
    step = load_checkpoint(run_dir / "checkpoints" / "last.pt")["train_state"]["step"]
    assert f"at step {step}: checkpoint saved to {run_dir / 'checkpoints' / 'last.pt'}" in line
    assert not (run_dir / "PREEMPTED").exists()  # the user stopped it: nothing to requeue
    assert wandb_records.exit_code(wandb_records.segments(run_dir)[-1]) == 130


def start_held(stage: str, tmp_path: Path, *overrides: str) -> tuple[subprocess.Popen, Path]:
    """``foodmtl train`` with the first call of ``stage`` (MODULE:FUNCTION) held until the test has
    signalled (tests/held_stage.py); returns the process and the file that releases the stage."""
    ready, sent = tmp_path / "held", tmp_path / "signalled"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "held_stage.py"), stage, str(ready), str(sent),
                             "train", str(TINY), *overrides], cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while not ready.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    return proc, sent


def signal_held(proc: subprocess.Popen, sent: Path, sig: int) -> str:
    """Send ``sig``, then release the held stage (its handler has run by then); the process's stderr."""
    proc.send_signal(sig)
    sent.touch()
    return proc.communicate(timeout=600)[1]


CAUSES = [(signal.SIGTERM, 143, "preempted (SIGTERM/SIGUSR1)"), (signal.SIGINT, 130, "interrupted (Ctrl-C)")]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, cause", CAUSES, ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_the_data_is_read_exits_with_one_line_and_writes_nothing(synthfood_root, tmp_path, sig, code,
                                                                                cause):
    out = tmp_path / "runs"
    proc, sent = start_held("foodmtl.engine.setup:build_data", tmp_path, f"data.root={synthfood_root}",
                            f"output_dir={out}")
    stderr = signal_held(proc, sent, sig)
    assert proc.returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if cause in line] == [
        f"{cause} before the first step: nothing was written"]
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, cause", CAUSES, ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_an_evaluation_stops_at_its_checkpoint_with_the_signals_code(synthfood_root, tmp_path, sig,
                                                                                     code, cause):
    """Epoch 1's evaluation is held; the run stops after it with epoch 1 checkpointed as finished
    (not after a step of epoch 2), and resume=auto goes on with epoch 2 without evaluating epoch 1 again."""
    out = tmp_path / "runs"
    run_dir = out / "synthfood-tiny" / "held"
    overrides = [f"data.root={synthfood_root}", f"output_dir={out}", "run=held", "train.epochs=2",
                 "train.log_every=1", "tracking.wandb=disabled"]
    proc, sent = start_held("foodmtl.engine.trainer:evaluate", tmp_path, *overrides)
    stderr = signal_held(proc, sent, sig)
    assert proc.returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr
    last = run_dir / "checkpoints" / "last.pt"
    state = load_checkpoint(last)["train_state"]
    trained = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "train/loss" in r]
    assert (state["epoch"], state["batch_in_epoch"], state["step"]) == (1, 0, trained[-1]["step"])
    assert {r["epoch"] for r in trained} == {0}
    [line] = [line for line in stderr.splitlines() if cause in line]
    assert line.endswith(f"{cause} at step {state['step']}: checkpoint saved to {last}; "
                         "continue with resume=auto run=held")
    assert (run_dir / "PREEMPTED").exists() == (sig == signal.SIGTERM)
    if sig == signal.SIGTERM:  # the resumed run in this process: the signal was the other process's
        assert main(["train", str(TINY), *overrides, "resume=auto"]) == 0
        assert [r["epoch"] for r in read_jsonl(run_dir / "metrics.jsonl") if "eval/loss" in r] == [0, 1]


def test_ctrl_c_before_training_is_one_line_and_130(monkeypatch, capsys):
    from foodmtl.commands import train as train_command

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_command, "run", interrupted)
    assert main(["train", str(TINY)]) == 130
    assert capsys.readouterr().err == "interrupted (Ctrl-C)\n"


def test_the_flag_keeps_the_strongest_signal_and_a_second_ctrl_c_stops_at_once():
    one_process = DistInfo(rank=0, world=1, local_rank=0, device=torch.device("cpu"))
    before = signal.getsignal(signal.SIGINT)   # SIG_IGN where the suite was started in the background
    flag = PreemptionFlag().install()
    try:
        assert flag.agreed(one_process) == 0
        os.kill(os.getpid(), signal.SIGINT)
        assert flag.agreed(one_process) == 130
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.agreed(one_process) == 143  # preempted outranks Ctrl-C: the job is requeued
        flag.code = 130
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs at the next bytecode
    finally:
        flag.restore()
    assert signal.getsignal(signal.SIGINT) is before
