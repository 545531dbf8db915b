"""Reading runs back from W&B (``foodmtl table|plot wandb:ENTITY/PROJECT``): fails in seconds with one line.

Without an API key ``wandb.Api`` raises a UsageError (a 20-line traceback); with a key but no
network it spends 36 s in retries before an AuthenticationError. So the key is checked first,
then the server (or its proxy) must accept a TCP connection within ``PROBE_TIMEOUT_S`` (the check
training makes before going online, tracking/wandb_run.py); W&B errors raised while reading
become one ``WandbUnavailable`` line (a ConfigError: the CLI prints ``error: ...``, exit 2).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from foodmtl.errors import ConfigError
from foodmtl.tracking.wandb_run import PROBE_TIMEOUT_S, has_credentials, server_reachable


class WandbUnavailable(ConfigError):
    """W&B cannot be read from here: no API key, no connection, or an error from its API."""


def base_url() -> str:
    """The server W&B would talk to (WANDB_BASE_URL, its settings files, else its default)."""
    import wandb

    return wandb.setup().settings.base_url


def require_api(source: str) -> None:
    """WandbUnavailable unless an API key exists and the W&B server answers within PROBE_TIMEOUT_S."""
    if not has_credentials():
        raise WandbUnavailable(f"{source}: no W&B API key (set WANDB_API_KEY or run `wandb login`), or read "
                               "local run folders instead (e.g. runs/<group>)")
    url = base_url()
    if not server_reachable(url):
        raise WandbUnavailable(f"{source}: W&B server {url} not reachable within {PROBE_TIMEOUT_S} s (no network?); "
                               "read local run folders instead, or sync and retry when online")


@contextmanager
def api_errors(source: str) -> Iterator[None]:
    """W&B API and HTTP errors raised inside as one WandbUnavailable line (their first line)."""
    import requests
    import wandb

    try:
        yield
    except (wandb.errors.Error, requests.RequestException) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WandbUnavailable(f"{source}: W&B says: {first}") from None


def load_group(source: str, group: str | None = None) -> list:
    """``foodmtl.analysis.runs.load_group``; a ``wandb:`` source is checked first and its errors are one line."""
    from foodmtl.analysis.runs import WANDB_PREFIX
    from foodmtl.analysis.runs import load_group as load

    if not source.startswith(WANDB_PREFIX):
        return load(source, group)
    require_api(source)
    with api_errors(source):
        return load(source, group)
