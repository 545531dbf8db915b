"""Where pretrained weights come from: a local file, or the Hugging Face hub or its local cache.

Without a network, huggingface_hub retries each file timm asks for (``model.safetensors``, then
``pytorch_model.bin``) five times with back-off: ~47 s before it gives up (docs/benchmarks.md).
One HEAD request to the hub endpoint with a short timeout tells first; when it gets no answer,
timm's download runs in huggingface_hub's offline mode, which takes the weights from the local
cache or fails at once, and the failure names the remedy: ``model.pretrained_file``.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from foodmtl.errors import ConfigError

PROBE_TIMEOUT_S = 3.0
HINT = "give local weights with model.pretrained_file=/path/weights.safetensors"


def local_weights(path: str | Path) -> str:
    if not Path(path).is_file():
        raise FileNotFoundError(f"model.pretrained_file={path}: no such file")
    return str(path)


def hub_unreachable() -> str | None:
    """Why the hub cannot be used now (offline mode, or its endpoint does not answer), else None."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        get_session().head(constants.ENDPOINT, timeout=PROBE_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001  any transport failure; the HTTP library changes between releases
        return f"{constants.ENDPOINT} does not answer ({exc})"
    return None


@contextmanager
def hub_or_cache(name: str) -> Iterator[None]:
    """Around timm's download of ``name``: offline mode when the hub does not answer; a cache miss
    then becomes a ConfigError with the remedy instead of a minute of retries."""
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    reason = hub_unreachable()
    was_offline = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = reason is not None  # read by huggingface_hub at each request
    try:
        yield
    except LocalEntryNotFoundError:
        if reason is None:
            raise
        raise ConfigError(f"model.pretrained=true: no {name} weights in the local Hugging Face cache and "
                          f"{reason}; {HINT}") from None
    finally:
        constants.HF_HUB_OFFLINE = was_offline
