"""``python tests/held_stage.py MODULE:FUNCTION READY SENT [foodmtl arguments]``: ``foodmtl`` with
the first call of one function held, so a test can signal the process at a known point.

The held call creates the file READY, waits until SENT exists (the test creates it once its
signal is sent: by then the handler has run), then goes on as the function would.
"""
import importlib
import sys
import time
from pathlib import Path


def hold(target: str, ready: Path, sent: Path) -> None:
    module_name, name = target.split(":")
    module = importlib.import_module(module_name)
    original, calls = getattr(module, name), []

    def held(*args, **kwargs):
        if not calls:
            calls.append(1)
            ready.touch()
            deadline = time.monotonic() + 300
            while not sent.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return original(*args, **kwargs)

    setattr(module, name, held)


if __name__ == "__main__":
    target, ready, sent, *argv = sys.argv[1:]
    hold(target, Path(ready), Path(sent))
    from foodmtl.cli import main

    sys.exit(main(argv))
