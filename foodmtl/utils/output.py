"""Run outputs are written whole or not at all, and a write that fails says which file.

A full disk, a quota, a file-size limit or a read-only run folder raises ``OutputError`` naming
the path (the CLI prints it as one ``error:`` line, exit 2). ``atomic_write`` goes through a
temporary file in the same folder and ``os.replace`` (as timm's CheckpointSaver does), so the
previous file stays readable, and it deletes the partial temporary file on failure: a 36 MB
leftover would keep a full disk full.
"""
from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path
from typing import BinaryIO, Callable

from foodmtl.errors import OutputError

def os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``: torch.save reports a failed write as a RuntimeError raised
    while handling the file object's OSError."""
    while exc is not None and not isinstance(exc, OSError):
        exc = exc.__cause__ or exc.__context__
    return exc


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(file)`` into a temporary file beside ``path``, flushed to disk, then renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        for stale in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):  # a killed writer's: free its space
            stale.unlink(missing_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        cause = os_error_in(exc) if isinstance(exc, Exception) else None
        if cause is None:
            raise
        raise OutputError(path, cause) from exc
