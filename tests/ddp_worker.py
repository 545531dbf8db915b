"""Run under torchrun by test_distributed.py and test_instances_ddp.py: one or more jobs, separated
by a ``;`` argument, one after the other in the same ranks (so one launch pays the imports, ~10 CPU s).

``CONFIG DUMP OVERRIDES...`` trains, then dumps this rank's state to DUMP/rank<N>.pt;
``foodmtl ARGS...`` runs ``python -m foodmtl ARGS...`` (its entry point, as torchrun -m foodmtl does).
Several jobs share one process group: torch names a new default group as it named the one
destroyed, so a second group would read the first one's stale addresses from torchrun's store.
"""
import runpy
import sys

import torch
import torch.distributed as dist

from foodmtl.config import load_config
from foodmtl.engine.trainer import Trainer


def train(config: str, dump: str, *overrides: str) -> None:
    trainer = Trainer(load_config(config, overrides))
    rank = trainer.info.rank
    trainer.fit()
    torch.save({"objective": trainer.objective.state_dict(), "optimizer": trainer.optimizer.state_dict()},
               f"{dump}/rank{rank}.pt")


def foodmtl(*args: str) -> None:
    sys.argv = ["foodmtl", *args]
    try:
        runpy.run_module("foodmtl", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        if done.code:
            raise


def jobs(argv: list[str]) -> list[list[str]]:
    found = [[]]
    for arg in argv:
        if arg == ";":
            found.append([])
        else:
            found[-1].append(arg)
    return found


if __name__ == "__main__":
    todo = jobs(sys.argv[1:])
    destroy = dist.destroy_process_group
    if len(todo) > 1:
        dist.destroy_process_group = lambda *args, **kwargs: None  # the jobs' cleanup() keeps the group
    for job in todo:
        if job[0] == "foodmtl":
            foodmtl(*job[1:])
        else:
            train(*job)
    if dist.is_initialized():
        destroy()
