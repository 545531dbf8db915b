"""Weights & Biases, made safe to leave on: it never hangs or crashes training, and what it
records matches the run.

Mode: ``tracking.wandb=auto`` follows ``WANDB_MODE`` when it is set (online, offline, disabled),
else it is online when credentials exist (WANDB_API_KEY or a netrc entry) and offline otherwise;
an explicit online/offline/disabled in the config wins over the environment.

Online init first opens a TCP connection to W&B's server (or the proxy to it) with a
``PROBE_TIMEOUT_S`` limit: a refused or unreachable server means offline at once, where
``wandb.init`` would retry for its whole init timeout and leave an empty run folder behind. An
online init that fails anyway (bad key, server error) also falls back to offline, and its run
folder is removed. Any later W&B error disables W&B with one warning.

Each evaluation metric (``eval/...``, ``eval_raw/...``) is defined on first use with
``summary="max,last"`` or ``"min,last"`` by its direction (``foodmtl.tasks.metric_direction``:
losses, errors ``min``), so the run's summary and W&B's runs table show its best value beside
the last. ``log_checkpoint`` adds a file to the run's model artifact ``model-<run id>`` (type
``model``, the name and aliases W&B's Lightning logger uses), offline too (``wandb sync`` uploads it).

``finish(exit_code)`` records the process's real exit code (1 failed, 2 bad input or unwritable
output, 130 Ctrl-C, 143 preempted). ``replay`` gives a resumed run the metrics.jsonl records its
W&B run lacks: a killed process's W&B writer loses what it had not flushed (a SIGKILLed run's
``.wandb`` file held 7 bytes, and SLURM's SIGTERM to a job step ends wandb-core too).
"""
from __future__ import annotations

import logging
import math
import netrc
import os
import secrets
import shutil
import socket
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from foodmtl.errors import ConfigError
from foodmtl.tasks import metric_direction

log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 30
LAUNCH_INPUTS = "wandb.sdk.launch.inputs.internal"  # the only module that stages W&B Launch job inputs
PROBE_TIMEOUT_S = 3
DIRECTED = ("eval/", "eval_raw/")  # metric keys whose W&B summary is their best value (and the last)
ENV_MODES = {"online": "online", "run": "online", "shared": "online", "offline": "offline",
             "dryrun": "offline", "disabled": "disabled"}


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in hosts)


def resolve_mode(mode: str) -> str:
    """``auto`` -> WANDB_MODE if set, else online with credentials; a WANDB_MODE that wandb would
    reject (an empty or unknown value) is a ConfigError, whatever the mode."""
    env = os.environ.get("WANDB_MODE")
    if env is not None and env not in ENV_MODES:
        raise ConfigError(f"WANDB_MODE={env!r} is not one of {', '.join(ENV_MODES)}; set one of them or unset it")
    if mode != "auto":
        return mode
    if env:
        return ENV_MODES[env]
    return "online" if has_credentials() else "offline"


def server_reachable(base_url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the W&B server (or the HTTP(S) proxy the environment names for it) accepts a TCP
    connection within ``timeout`` seconds."""
    url = urllib.parse.urlsplit(base_url)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(url.hostname or ""):
        url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except (OSError, ValueError):
        return False
    return True


def leave_inherited_service() -> None:
    """Start this process's own W&B service rather than a parent's (pytest, a notebook, a launcher
    that used wandb): WANDB_SERVICE names the pid that started it. A run in a parent's service
    stays open when this process is killed, and the resumed process's init then fails with "run
    ID ... is in use"."""
    parts = os.environ.get("WANDB_SERVICE", "").split("-")
    if len(parts) > 2 and parts[1].isdigit() and int(parts[1]) != os.getpid():
        del os.environ["WANDB_SERVICE"]


def unsent(records: list[dict[str, Any]], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The records (metrics.jsonl order) a resumed W&B run lacks.

    W&B receives records in the order they were logged, so a run holds a prefix of them; its
    summary (the last value of every key) says where that prefix ends. A run whose summary is
    empty gets every record: a new one, or any offline one (each offline process writes a new
    file, which so holds the whole history).
    """
    last = summary.get("step")
    if last is None:
        return list(records)
    for i in range(len(records) - 1, -1, -1):
        record = records[i]
        if record["step"] < last or (record["step"] == last and _in_summary(record, summary)):
            return list(records[i + 1:])
    return list(records)


def _in_summary(record: dict[str, Any], summary: dict[str, Any]) -> bool:
    return all(v is None or last_value(summary.get(k)) == v for k, v in record.items())


def last_value(entry: Any) -> Any:
    """A summary entry's last logged value: a metric defined with summary ops holds {"max": .., "last": ..}."""
    return entry.get("last") if hasattr(entry, "get") else entry  # a dict, or wandb's SummarySubDict


def summary_ops(key: str) -> str | None:
    """``"max,last"`` / ``"min,last"`` for an evaluation metric, None for any other key."""
    return f"{metric_direction(key)},last" if key.startswith(DIRECTED) else None


class WandbWriter:
    """A thin guard around one wandb run; ``self.run`` is None once disabled."""

    def __init__(self, mode: str, run_dir: Path, name: str, config: dict[str, Any], project: str,
                 entity: str | None = None, group: str | None = None, tags: list[str] | None = None,
                 job_type: str = "train", run_id: str | None = None):
        self.run = None
        self.run_dir = run_dir
        self.defined: set[str] = set()
        mode = resolve_mode(mode)
        if mode == "disabled":
            return
        resume = "allow" if run_id else None
        run_id = run_id or secrets.token_hex(4)  # known before init, so a failed init's folder can go
        leave_inherited_service()
        kwargs = dict(project=project, entity=entity, group=group, tags=tags or None, job_type=job_type,
                      name=name, config=config, dir=str(run_dir), id=run_id, resume=resume)
        if mode == "online" and not self._reachable():
            mode = "offline"
        self.run = self._init(mode, kwargs)
        if self.run is None and mode == "online":
            self._remove_failed_run(run_id)
            log.warning("W&B online init failed; logging offline to %s (wandb sync it later)", run_dir / "wandb")
            self.run = self._init("offline", kwargs)
        if self.run is not None:
            self._define_axes()

    def _reachable(self) -> bool:
        try:
            import wandb

            base_url = wandb.setup().settings.base_url
        except Exception:  # noqa: BLE001 - then wandb.init fails too, and falls back
            return True
        if server_reachable(base_url):
            return True
        log.warning("W&B server %s not reachable; logging offline to %s (wandb sync it later)",
                    base_url, self.run_dir / "wandb")
        return False

    @staticmethod
    def _init(mode: str, kwargs: dict[str, Any]):
        try:
            import wandb

            skip_unstaged_launch_inputs(wandb.sdk.wandb_run.Run)
            settings = wandb.Settings(init_timeout=INIT_TIMEOUT_S, silent=True, console="off")
            return wandb.init(mode=mode, settings=settings, reinit="finish_previous", **kwargs)
        except Exception as exc:  # noqa: BLE001 - W&B must never take training down
            log.warning("W&B init (%s) failed: %s", mode, exc)
            return None

    def _remove_failed_run(self, run_id: str) -> None:
        for folder in (self.run_dir / "wandb").glob(f"run-*-{run_id}"):
            shutil.rmtree(folder, ignore_errors=True)

    def _define_axes(self) -> None:
        self._guard(lambda: (self.run.define_metric("step"),
                             self.run.define_metric("*", step_metric="step")))

    @property
    def run_id(self) -> str | None:
        return self.run.id if self.run is not None else None

    def log(self, record: dict[str, Any]) -> None:
        self._guard(lambda: self._log(record))

    def _log(self, record: dict[str, Any]) -> None:
        for key in record.keys() - self.defined:
            ops = summary_ops(key)
            if ops:
                self.run.define_metric(key, step_metric="step", summary=ops)
            self.defined.add(key)
        self.run.log(record)

    def log_checkpoint(self, path: Path, aliases: list[str]) -> None:
        def add() -> None:
            import wandb

            artifact = wandb.Artifact(f"model-{self.run.id}", type="model", metadata={"file": path.name})
            artifact.add_file(str(path), name=path.name)
            self.run.log_artifact(artifact, aliases=aliases)
        self._guard(add)

    def replay(self, records: list[dict[str, Any]]) -> None:
        """Log the records this (resumed) run lacks, oldest first, before anything new."""
        if self.run is None:
            return
        missing = unsent(records, dict(self.run.summary))
        for record in missing:
            self.log({k: math.nan if v is None else v for k, v in record.items()})
        if missing:
            log.info("W&B: replayed %d metrics.jsonl record(s) the run lacked", len(missing))

    def summary(self, values: dict[str, Any]) -> None:
        self._guard(lambda: self.run.summary.update(values))

    def log_images(self, key: str, images: list, step: int) -> None:
        self._guard(lambda: self.run.log({key: images, "step": step}))

    def finish(self, exit_code: int = 0) -> None:
        self._guard(lambda: self.run.finish(exit_code=exit_code))
        self.run = None

    def _guard(self, action) -> None:
        if self.run is None:
            return
        try:
            action()
        except Exception as exc:  # noqa: BLE001
            log.warning("W&B disabled after error: %s", exc)
            self.run = None
            _teardown_quietly()


def skip_unstaged_launch_inputs(run_class: type) -> None:
    """Spare ``wandb.init`` the import of W&B Launch when no Launch input can be waiting.

    wandb 0.31's ``Run._on_ready`` ends with ``_detect_and_apply_job_inputs``, which imports
    ``wandb.sdk.launch.inputs.internal`` (W&B Launch, its public API client, artifacts and their
    pydantic models: about half of an offline ``wandb.init``) to apply the inputs that
    ``wandb.sdk.launch.manage_config_file`` / ``manage_wandb_config`` staged before the init. They are
    staged on a singleton of that module, so while it is not imported nothing is staged and the
    call has nothing to do; once it is imported (by a Launch job) the call runs as before."""
    apply = getattr(run_class, "_detect_and_apply_job_inputs", None)
    if apply is None or getattr(apply, "skips_unstaged", False):
        return

    def detect_and_apply_job_inputs(run) -> None:
        if LAUNCH_INPUTS in sys.modules:
            apply(run)

    detect_and_apply_job_inputs.skips_unstaged = True
    run_class._detect_and_apply_job_inputs = detect_and_apply_job_inputs


def _teardown_quietly() -> None:
    """Close W&B's service connection now: left to its exit hook, a dead wandb-core (SIGTERMed with
    the job step) prints a traceback at interpreter exit."""
    try:
        import wandb

        wandb.teardown()
    except (Exception, SystemExit):  # noqa: BLE001 - wandb's teardown may sys.exit with the service's code
        pass
