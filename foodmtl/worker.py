"""``python -m foodmtl.worker FD``: a local sweep's warm worker, which trains runs one after another
in one process, so that a run's largest fixed cost, importing torch, timm and W&B (about 3.5 of its
5 s, docs/benchmarks.md "Run cost"), is paid once per worker instead of once per run.

Protocol (``foodmtl.analysis.pools.WarmPool``): each line on stdin is a JSON list, the arguments of
one ``foodmtl`` command; when the command ends, its exit code goes as one line to file descriptor
FD. The worker exits at the end of its input, and after any run that did not exit 0: a failed,
interrupted or preempted run leaves nothing behind for the next one, as the pool starts a fresh
worker in its place. A preemption signal (SIGTERM, SIGUSR1) between runs ends it with the signal's
exit code (143), which the pool counts as a preemption, not a failure.

What keeps the runs of one worker independent: each builds its own model, optimizer, loaders and
W&B run and seeds every generator it draws from (``engine/setup.set_seed``); between two runs the
worker restores the environment variables, drops torch.compile's caches and collects the garbage
(so the last run's loader workers and tensors are gone). tests/test_sweep.py checks that a run
trained after another in one worker writes the same metrics as in its own process, and that each
run has its own W&B run holding its own records.
"""
from __future__ import annotations

import gc
import json
import os
import signal
import sys
import traceback

from foodmtl.cli import main as foodmtl_main
from foodmtl.errors import INTERRUPTED, PREEMPT_SIGNALS, SIGNAL_EXIT_CODES, USAGE_ERROR


def run_one(argv: list[str]) -> int:
    """``foodmtl ARGV`` in this process; its exit code (1 for an uncaught exception, whose traceback
    is printed as the command's own process would print it)."""
    environment = dict(os.environ)
    try:
        return foodmtl_main(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except KeyboardInterrupt:
        return INTERRUPTED
    except BaseException:  # noqa: BLE001 - a bug in the run: reported as its own process would, then exit
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.environ.clear()
        os.environ.update(environment)
        forget_compiled()
        gc.collect()


def forget_compiled() -> None:
    """Drop torch.compile's caches: the next run's model is a new object, and each recompilation
    would count towards dynamo's recompile limit, past which it silently runs eagerly."""
    dynamo = sys.modules.get("torch._dynamo")
    if dynamo is not None:
        dynamo.reset()


def stop_between_runs(signum, frame) -> None:
    """A preemption signal outside a run's own handlers (between two runs, or as one starts): the
    worker exits with the signal's code, which the pool reads as a preemption, not a failure."""
    raise SystemExit(SIGNAL_EXIT_CODES[signum])


def serve(commands, result_fd: int) -> int:
    """Run each JSON argument list read from ``commands``, writing each exit code to ``result_fd``;
    the first non-zero code ends the worker with it."""
    for line in commands:
        code = run_one(json.loads(line))
        os.write(result_fd, f"{code}\n".encode())
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("error: usage: python -m foodmtl.worker FD (foodmtl sweep starts it; see foodmtl/worker.py)",
              file=sys.stderr)
        sys.exit(USAGE_ERROR)
    for sig in PREEMPT_SIGNALS:
        signal.signal(sig, stop_between_runs)
    try:
        sys.exit(serve(sys.stdin, int(sys.argv[1])))
    except KeyboardInterrupt:  # Ctrl-C while waiting for the next run
        sys.exit(INTERRUPTED)
