"""Stop cleanly on a signal: SIGTERM/SIGUSR1 (a scheduler's preemption) or SIGINT (Ctrl-C).

The handler only notes the signal. At the next step boundary every rank agrees on it (an
all-reduce), rank 0 saves ``last.pt``, and all ranks exit with ``EXIT_PREEMPTED`` (143 =
128 + SIGTERM) or, for Ctrl-C, ``EXIT_INTERRUPTED`` (130 = 128 + SIGINT). A second Ctrl-C stops
at once, without a checkpoint (for a step or an evaluation that takes too long).

After a preemption rank 0 also writes a marker file, once the checkpoint is on disk: a launcher
requeues on that marker, not on an exit code, because torchrun ends with 1 whatever its workers
returned (experiments/slurm/train.sbatch). Ctrl-C writes none: the user stopped the run.

DataLoader workers forked after ``install`` inherit the handler, so a signal to the whole process
group (torchrun's ``killpg``, SLURM signalling a step's cgroup, Ctrl-C) does not kill them mid-epoch.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import torch
import torch.distributed as dist

from foodmtl.engine.distributed import DistInfo
from foodmtl.errors import INTERRUPTED as EXIT_INTERRUPTED
from foodmtl.errors import SIGNAL_EXIT_CODES as EXIT_CODES
from foodmtl.utils.output import atomic_write

MARKER_ENV = "FOODMTL_PREEMPT_MARKER"               # where the marker goes; default <run>/PREEMPTED


class PreemptionFlag:
    """Set by a signal handler; read (and agreed across ranks) at step boundaries."""

    def __init__(self):
        self.code = 0
        self.previous = {}

    def install(self) -> "PreemptionFlag":
        for sig in EXIT_CODES:
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.code == EXIT_INTERRUPTED:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now, without a checkpoint
        self.code = max(self.code, EXIT_CODES[signum])  # a preemption outranks a Ctrl-C

    def agreed(self, info: DistInfo) -> int:
        """The exit code every rank stops with, the same on all of them; 0: go on."""
        if info.world == 1:
            return self.code
        code = torch.tensor([float(self.code)], device=info.device)
        dist.all_reduce(code, op=dist.ReduceOp.MAX)
        return int(code.item())


def stop_message(code: int, step: int, checkpoint: Path, run: str) -> str:
    cause = "interrupted (Ctrl-C)" if code == EXIT_INTERRUPTED else "preempted (SIGTERM/SIGUSR1)"
    return f"{cause} at step {step}: checkpoint saved to {checkpoint}; continue with resume=auto run={run}"


def marker_path(run_dir: Path) -> Path:
    return Path(os.environ.get(MARKER_ENV) or run_dir / "PREEMPTED")


def write_marker(run_dir: Path, step: int, checkpoint: Path) -> None:
    text = json.dumps({"run": str(run_dir), "step": step, "checkpoint": str(checkpoint)}) + "\n"
    atomic_write(marker_path(run_dir), lambda f: f.write(text.encode()))


def clear_marker(run_dir: Path) -> None:
    """A run that starts again is no longer preempted; a stale marker would requeue a crash."""
    marker_path(run_dir).unlink(missing_ok=True)
