"""Every error a user can cause, the process exit codes and the preemption signals.

The bottom of the package: it imports nothing of foodmtl, and everything may import it. A user
mistake (bad config, bad data, a missing file, an unknown name, an unwritable run folder) is one
of ``USER_ERRORS``: the CLI prints it as one ``error: ...`` line and exits ``USAGE_ERROR`` (2),
without a traceback; anything else is a bug and keeps its traceback (exit ``FAILED``).
"""
from __future__ import annotations

import errno
import re
import shutil
import signal
from pathlib import Path

USAGE_ERROR = 2     # a user mistake: one ``error:`` line
FAILED = 1          # a bug or a failed run (e.g. a NaN loss): the traceback is kept
INTERRUPTED = 130   # 128 + SIGINT: Ctrl-C
PREEMPTED = 143     # 128 + SIGTERM: what schedulers read as "terminated"

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)  # a scheduler's preemption: the run is requeued
SIGNAL_EXIT_CODES = {signal.SIGTERM: PREEMPTED, signal.SIGUSR1: PREEMPTED, signal.SIGINT: INTERRUPTED}


class ConfigError(ValueError):
    """A config file, override or value that cannot be used."""


class DataError(ValueError):
    """A data file that cannot be used (bad list line, unknown class, malformed CSV/JSON, ...).

    ``str(DataError(path, "duplicate image id 12", line=7))`` reads ``<path>, line 7: duplicate
    image id 12``; the CLI prints it after ``error: `` and ``data_prep/verify.py`` the same text."""

    def __init__(self, path: str | Path, what: str, line: int | None = None):
        self.path, self.what, self.line = str(path), what, line
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {what}")


class SampleError(ValueError):
    """One sample that cannot be used (e.g. a mask that does not fit its image); the message names
    the file. Like an unreadable image, it is skipped and counted, or fatal with ``data.strict``."""


class CorruptImageError(RuntimeError):
    """Strict mode: a sample that cannot be read. Its message names the file on the first line,
    also when a DataLoader worker re-raises it (which prepends "Caught ... Original Traceback")."""

    def __init__(self, message: str = ""):
        found = re.findall(rf"{type(self).__name__}: (.+)", message)
        super().__init__(found[-1] if "Original Traceback" in message and found else message)


class UnknownNameError(KeyError):
    """A name that is not registered; the message lists the closest valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated or not a foodmtl checkpoint."""


class OutputError(OSError):
    """A run output that could not be written; ``path`` names it, ``errno`` says why (a full disk
    also says how much is free)."""

    def __init__(self, path: str | Path, cause: OSError):
        super().__init__(cause.errno, cause.strerror or str(cause), str(path))
        self.message = f"cannot write {path}: {cause.strerror or cause}{_free_space(Path(path), cause.errno)}"

    def __str__(self) -> str:
        return self.message


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _free_space(path: Path, code: int | None) -> str:
    if code not in DISK_FULL:
        return ""
    folder = next((p for p in path.parents if p.exists()), Path("."))
    return f" ({shutil.disk_usage(folder).free / 2**20:.0f} MiB free on {folder})"


class Preempted(SystemExit):
    """Raised to end a run after a preemption signal (its checkpoint saved): exits ``code``."""

    def __init__(self, code: int = PREEMPTED):
        super().__init__(code)


USER_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError, FileExistsError, PermissionError, OutputError, ConfigError, DataError, UnknownNameError,
    CorruptImageError, CheckpointError)


def exit_code(exc: BaseException) -> int:
    """The code the process ends with when ``exc`` reaches the CLI."""
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else FAILED)
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    return USAGE_ERROR if isinstance(exc, USER_ERRORS) else FAILED
