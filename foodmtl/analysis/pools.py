"""Where a local sweep's runs train: each in its own process (``ProcessPool``) or several in turn in
each of a few warm workers (``WarmPool``, ``python -m foodmtl.worker``); both pass a preemption
signal on to the running runs."""
from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Any

from foodmtl.errors import ConfigError
from foodmtl.errors import PREEMPT_SIGNALS as SIGNALS

log = logging.getLogger(__name__)


class ProcessPool:
    """At most ``jobs`` runs at a time, each its own ``python -m foodmtl`` process; SIGTERM/SIGUSR1
    sent to the sweep are passed on to every running child (so each checkpoints and exits with
    EXIT_PREEMPTED instead of being orphaned) and no new run starts after one."""

    def __init__(self, jobs: int, env: dict[str, str]):
        if jobs < 1:
            raise ConfigError(f"--jobs={jobs} must be >= 1")
        self.jobs, self.env = jobs, env
        self.running: dict[Any, tuple] = {}  # a handle with poll(), returncode, send_signal() -> (key, start)
        self.preempted = False

    @contextmanager
    def forwarding_signals(self):
        previous = {sig: signal.signal(sig, self._forward) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _forward(self, signum, frame) -> None:
        self.preempted = True
        for child in self.running:
            child.send_signal(signum)

    def run(self, jobs):
        """Yields (key, exit code, seconds) as the runs end, starting new ones as slots free; ``jobs``
        holds (key, ``foodmtl`` argument list)."""
        pending = iter(jobs)
        while True:
            while len(self.running) < self.jobs and not self.preempted:
                item = next(pending, None)
                if item is None:
                    break
                key, argv = item
                log.info("start %s", shlex.join(argv))
                self.running[self.start(argv)] = (key, time.monotonic())
            if not self.running:
                return
            child = self._wait_any()
            key, start = self.running.pop(child)
            yield key, child.returncode, time.monotonic() - start

    def start(self, argv: list[str]):
        return subprocess.Popen([sys.executable, "-m", "foodmtl", *argv], env=self.env)

    def close(self) -> None:
        """Nothing outlives a run here."""

    def _wait_any(self):
        while True:
            for child in self.running:
                if child.poll() is not None:
                    return child
            time.sleep(0.05)


class WarmPool(ProcessPool):
    """At most ``jobs`` warm workers (``python -m foodmtl.worker``), each training one run after
    another in its one process, so the imports are paid once per worker, not once per run
    (foodmtl/worker.py says what keeps the runs independent). A worker whose run did not exit 0
    exits with it, and the next run gets a fresh worker; a worker killed in a run (out of memory)
    reports the signal as a child process would (a negative exit code)."""

    def __init__(self, jobs: int, env: dict[str, str]):
        super().__init__(jobs, env)
        self.idle: list[Worker] = []

    def start(self, argv: list[str]) -> "Worker":
        while self.idle and self.idle[-1].process.poll() is not None:  # died while idle
            self.idle.pop().forget()
        worker = self.idle.pop() if self.idle else Worker(self.env)
        worker.begin(argv, self.idle)
        return worker

    def close(self) -> None:
        for worker in self.idle:
            worker.stop()
        self.idle = []


class Worker:
    """One ``python -m foodmtl.worker`` process: runs are sent on its stdin, exit codes come back on a pipe."""

    def __init__(self, env: dict[str, str]):
        read, write = os.pipe()
        self.process = subprocess.Popen([sys.executable, "-m", "foodmtl.worker", str(write)], env=env,
                                        stdin=subprocess.PIPE, pass_fds=(write,), text=True)
        os.close(write)
        os.set_blocking(read, False)
        self.results, self.returncode, self.idle = read, None, None

    def begin(self, argv: list[str], idle: list["Worker"]) -> None:
        """Send one run; when it ends with 0 the worker joins ``idle``."""
        self.returncode, self.idle = None, idle
        try:
            self.process.stdin.write(json.dumps(argv) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:  # it died since: poll() reports how
            pass

    def poll(self) -> int | None:
        """The run's exit code once it ended, else None."""
        if self.returncode is None:
            code = self._read()
            if code is None and self.process.poll() is not None:
                code = self._read()  # written just before the exit
                code = self.process.returncode if code is None else code
            if code is not None:
                self.returncode = code
                if code == 0:
                    self.idle.append(self)
                else:
                    self.process.wait()
                    self.forget()
        return self.returncode

    def _read(self) -> int | None:
        try:
            line = os.read(self.results, 64)
        except BlockingIOError:
            return None
        return int(line) if line.strip() else None

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> None:
        """End an idle worker: its input closes, it exits."""
        self.process.stdin.close()
        self.process.wait()
        self.forget()

    def forget(self) -> None:
        """Close this end of an exited worker's pipes."""
        if not self.process.stdin.closed:
            self.process.stdin.close()
        os.close(self.results)
