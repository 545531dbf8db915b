"""SIGTERM/SIGUSR1 -> checkpoint at the next step boundary, agreed by all ranks, then exit.

The exit code is ``EXIT_PREEMPTED`` (143 = 128 + SIGTERM, what schedulers read as
"terminated"); experiments/slurm/train.sbatch requeues on it and the run goes on
with ``resume=auto``.
"""
from __future__ import annotations

import signal

import torch
import torch.distributed as dist

from foodmtl.engine.distributed import DistInfo

EXIT_PREEMPTED = 143
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(SystemExit):
    def __init__(self):
        super().__init__(EXIT_PREEMPTED)


class PreemptionFlag:
    """Set by a signal handler; read (and agreed across ranks) at step boundaries."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def install(self) -> "PreemptionFlag":
        for sig in SIGNALS:
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def agreed(self, info: DistInfo) -> bool:
        """True on every rank as soon as any rank was signalled."""
        if info.world == 1:
            return self.requested
        flag = torch.tensor([float(self.requested)], device=info.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())
