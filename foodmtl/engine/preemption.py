"""Stop cleanly on a signal: SIGTERM/SIGUSR1 (a scheduler's preemption) or SIGINT (Ctrl-C).

The handler only notes the signal. At the next step boundary, or after an evaluation and its
checkpoint, every rank agrees on it (an all-reduce), rank 0 saves ``last.pt`` (unless the
evaluation just did), and all ranks exit with ``EXIT_PREEMPTED`` (143 = 128 + SIGTERM) or, for
Ctrl-C, ``EXIT_INTERRUPTED`` (130 = 128 + SIGINT). A second Ctrl-C stops at once, without a
checkpoint (for a step or an evaluation that takes too long). Before that, from the start of
``foodmtl train`` until the trainer installs the handler just before it claims the run folder
(``stopping_before_training``), a signal stops the process at once with one line and the same
codes: nothing has been written yet.

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
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from foodmtl.errors import INTERRUPTED as EXIT_INTERRUPTED
from foodmtl.errors import PREEMPTED as EXIT_PREEMPTED
from foodmtl.errors import SIGNAL_EXIT_CODES as EXIT_CODES
from foodmtl.utils.output import atomic_write

if TYPE_CHECKING:  # torch is imported where it is used: ``stopping_before_training`` runs before it loads
    from foodmtl.engine.distributed import DistInfo

CAUSES = {EXIT_PREEMPTED: "preempted (SIGTERM/SIGUSR1)", EXIT_INTERRUPTED: "interrupted (Ctrl-C)"}

MARKER_ENV = "FOODMTL_PREEMPT_MARKER"               # where the marker goes; default <run>/PREEMPTED


class PreemptionFlag:
    """Set by a signal handler; read (and agreed across ranks) at step boundaries."""

    def __init__(self):
        self.code = 0
        self.previous = {}

    def install(self) -> "PreemptionFlag":
        """Note the signals from now on (again: nothing changes) until ``restore``."""
        for sig in EXIT_CODES:
            if sig not in self.previous:
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def take_over(self) -> None:
        """Install now if ``stopping_before_training`` is in force (``foodmtl train``): a signal after
        the run's first write must stop at a checkpoint, not end the process. Elsewhere (a Trainer
        built in a test or a notebook) the flag waits for ``Trainer.fit``, which restores it."""
        if signal.getsignal(signal.SIGTERM) is stop_before_training:
            self.install()

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
        import torch
        import torch.distributed as dist

        code = torch.tensor([float(self.code)], device=info.device)
        dist.all_reduce(code, op=dist.ReduceOp.MAX)
        return int(code.item())


def stop_message(code: int, step: int, checkpoint: Path, run: str) -> str:
    return f"{CAUSES[code]} at step {step}: checkpoint saved to {checkpoint}; continue with resume=auto run={run}"


class StoppedBeforeTraining(SystemExit):
    """A signal before ``PreemptionFlag`` took over: the process exits with the signal's code."""

    def __init__(self, signum: int):
        super().__init__(EXIT_CODES[signum])
        self.message = f"{CAUSES[EXIT_CODES[signum]]} before the first step: nothing was written"


def stop_before_training(signum, frame) -> None:
    raise StoppedBeforeTraining(signum)


@contextmanager
def stopping_before_training() -> Iterator[None]:
    """``foodmtl train`` until ``Trainer.fit`` installs ``PreemptionFlag``: a signal stops the
    process at once with one line, the signal's exit code and no traceback. Nothing is written
    before then (``PreemptionFlag.take_over`` comes before the run folder is claimed), so nothing
    is lost or left half-written. The flag gives these handlers back when training ends."""
    previous = {sig: signal.signal(sig, stop_before_training) for sig in EXIT_CODES}
    try:
        yield
    except StoppedBeforeTraining as stop:
        print(stop.message, file=sys.stderr)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def marker_path(run_dir: Path) -> Path:
    return Path(os.environ.get(MARKER_ENV) or run_dir / "PREEMPTED")


def write_marker(run_dir: Path, step: int, checkpoint: Path) -> None:
    text = json.dumps({"run": str(run_dir), "step": step, "checkpoint": str(checkpoint)}) + "\n"
    atomic_write(marker_path(run_dir), lambda f: f.write(text.encode()))


def clear_marker(run_dir: Path) -> None:
    """A run that starts again is no longer preempted; a stale marker would requeue a crash."""
    marker_path(run_dir).unlink(missing_ok=True)
