"""Weights & Biases, made safe to leave on: it never hangs or crashes training.

Mode ``auto``: online when credentials exist (WANDB_API_KEY or a netrc entry),
otherwise offline. An online init that fails (no network, bad key, timeout)
falls back to offline; any later W&B error disables W&B with one warning.
"""
from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 30


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in hosts)


def resolve_mode(mode: str) -> str:
    if mode == "auto":
        return "online" if has_credentials() else "offline"
    return mode


class WandbWriter:
    """A thin guard around one wandb run; ``self.run`` is None once disabled."""

    def __init__(self, mode: str, run_dir: Path, name: str, config: dict[str, Any], project: str,
                 entity: str | None = None, group: str | None = None, tags: list[str] | None = None,
                 job_type: str = "train", run_id: str | None = None):
        self.run = None
        mode = resolve_mode(mode)
        if mode == "disabled":
            return
        kwargs = dict(project=project, entity=entity, group=group, tags=tags or None, job_type=job_type,
                      name=name, config=config, dir=str(run_dir), id=run_id, resume="allow" if run_id else None)
        self.run = self._init(mode, kwargs)
        if self.run is None and mode == "online":
            log.warning("W&B online init failed; logging offline to %s", run_dir)
            self.run = self._init("offline", kwargs)
        if self.run is not None:
            self._define_axes()

    @staticmethod
    def _init(mode: str, kwargs: dict[str, Any]):
        try:
            import wandb

            settings = wandb.Settings(init_timeout=INIT_TIMEOUT_S, silent=True, console="off")
            return wandb.init(mode=mode, settings=settings, reinit="finish_previous", **kwargs)
        except Exception as exc:  # noqa: BLE001 - W&B must never take training down
            log.warning("W&B init (%s) failed: %s", mode, exc)
            return None

    def _define_axes(self) -> None:
        self._guard(lambda: (self.run.define_metric("step"),
                             self.run.define_metric("*", step_metric="step")))

    @property
    def run_id(self) -> str | None:
        return self.run.id if self.run is not None else None

    def log(self, record: dict[str, Any]) -> None:
        self._guard(lambda: self.run.log(record))

    def summary(self, values: dict[str, Any]) -> None:
        self._guard(lambda: self.run.summary.update(values))

    def log_images(self, key: str, images: list, step: int) -> None:
        self._guard(lambda: self.run.log({key: images, "step": step}))

    def finish(self) -> None:
        self._guard(lambda: self.run.finish())
        self.run = None

    def _guard(self, action) -> None:
        if self.run is None:
            return
        try:
            action()
        except Exception as exc:  # noqa: BLE001
            log.warning("W&B disabled after error: %s", exc)
            self.run = None
