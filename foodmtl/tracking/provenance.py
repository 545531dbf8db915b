"""Where a run came from: the code's git commit and the launch shape, for W&B config and summary."""
from __future__ import annotations

import subprocess
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def git_sha(cwd: Path = PACKAGE_DIR) -> str | None:
    """``HEAD``'s commit, with ``-dirty`` when tracked files changed; None outside a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def provenance(world_size: int) -> dict[str, str | int | None]:
    return {"git_sha": git_sha(), "world_size": world_size}
