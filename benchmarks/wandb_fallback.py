"""Seconds until training can log, when W&B's server refuses connections, and run folders left.

WANDB_BASE_URL points at a closed local port and an API key is set, so the start is online;
wandb is imported and its service started before the clock starts.
``foodmtl``: WandbWriter("online"), whose TCP probe fails at once, then an offline run.
``bare wandb.init``: what WandbWriter did before the probe, an online wandb.init (init_timeout
INIT_TIMEOUT_S) and, when it raises, an offline one. Each start gets a fresh folder:

    python benchmarks/wandb_fallback.py            # --skip-bare: only the foodmtl row
"""
from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

from foodmtl.tracking.wandb_run import INIT_TIMEOUT_S, WandbWriter, server_reachable


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ours(folder: Path):
    return WandbWriter("online", folder, "bench", {}, "bench").run


def bare(folder: Path):
    import wandb

    for mode in ("online", "offline"):
        try:
            settings = wandb.Settings(init_timeout=INIT_TIMEOUT_S, silent=True, console="off")
            return wandb.init(mode=mode, dir=str(folder), project="bench", settings=settings)
        except Exception:  # noqa: BLE001 - the online start is expected to fail here
            continue
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-bare", action="store_true", help="leave out the ~30 s bare wandb.init row")
    args = parser.parse_args()
    os.environ.update(WANDB_BASE_URL=f"http://127.0.0.1:{closed_port()}", WANDB_API_KEY="x" * 40, WANDB_SILENT="true")
    os.environ.pop("WANDB_MODE", None)
    import wandb  # imported before timing: every start pays it once, whatever happens next

    wandb.setup()
    print("| start | s until an offline run logs | run folders under wandb/ |\n| --- | ---: | --- |")
    t0 = time.perf_counter()
    reachable = server_reachable(os.environ["WANDB_BASE_URL"])
    print(f"| the TCP probe alone | {time.perf_counter() - t0:.4f} (reachable: {reachable}) | |")
    for name, start in [("foodmtl", ours)] + ([] if args.skip_bare else [("bare wandb.init", bare)]):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run = start(Path(tmp))
            seconds = time.perf_counter() - t0
            mode = "offline" if run is not None and run.offline else "none"
            if run is not None:
                run.finish()
            folders = sorted(p.name.rsplit("-", 2)[0] for p in (Path(tmp) / "wandb").glob("*run-*"))
            print(f"| {name} | {seconds:.1f} ({mode}) | {', '.join(folders)} |")


if __name__ == "__main__":
    main()
