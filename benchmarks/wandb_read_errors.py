"""Seconds until ``foodmtl table|plot wandb:ENTITY/PROJECT`` fails without an API key or a W&B server.

Each case is a fresh process, as a user runs it, with HOME pointing at an empty folder (no netrc)
and WANDB_MODE unset. *before*: what the commands did until then, ``wandb.Api(timeout=30).runs(...)``
straight away (``foodmtl.analysis.runs.wandb_runs``); *foodmtl*: the command now (key check, then a 3 s TCP
probe of the server, then the API; foodmtl/analysis/wandb_api.py). The server is W&B's default
(no network here) or a closed local port (``WANDB_BASE_URL``). Prints a markdown table:

    python benchmarks/wandb_read_errors.py            # --skip-before: only the foodmtl rows
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FOODMTL = [str(Path(sys.executable).with_name("foodmtl")), "table", "wandb:someone/foodmtl"]
BEFORE = [sys.executable, "-c", "import wandb; list(wandb.Api(timeout=30).runs('someone/foodmtl'))"]
KEY = "x" * 40


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int, list[str]]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - start, done.returncode, done.stderr.strip().splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-before", action="store_true", help="leave out the slow wandb.Api rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        base = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {
            "HOME": home, "NETRC": f"{home}/netrc", "WANDB_SILENT": "true"}
        servers = {"no API key": {}, "key, default server (no network)": {"WANDB_API_KEY": KEY},
                   "key, server port closed": {"WANDB_API_KEY": KEY,
                                               "WANDB_BASE_URL": f"http://127.0.0.1:{closed_port()}"}}
        commands = [("foodmtl", FOODMTL)] + ([] if args.skip_before else [("before", BEFORE)])
        print("| case | code | s | exit | stderr lines | last stderr line |\n| --- | --- | ---: | ---: | ---: | --- |")
        for case, extra in servers.items():
            for name, command in commands:
                seconds, code, err = timed(command, base | extra)
                last = (err[-1] if err else "")[:110].replace("|", "\\|")
                print(f"| {case} | {name} | {seconds:.1f} | {code} | {len(err)} | `{last}` |", flush=True)


if __name__ == "__main__":
    main()
