"""Process exit codes: the CLI ends with them, and W&B records the same code for the run."""
from __future__ import annotations

FAILED = 1          # a bug or a failed run (e.g. a NaN loss): the traceback is kept
INTERRUPTED = 130   # 128 + SIGINT: Ctrl-C
PREEMPTED = 143     # 128 + SIGTERM: what schedulers read as "terminated"


def exit_code(exc: BaseException) -> int:
    """The code the process ends with when ``exc`` reaches the CLI (cli.user_errors -> 2)."""
    from foodmtl.cli import USAGE_ERROR, user_errors

    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else FAILED)
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    return USAGE_ERROR if isinstance(exc, user_errors()) else FAILED
