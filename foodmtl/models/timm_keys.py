"""A backbone's weights under timm's own names, and timm's layer groups over them.

The backbone's ``net`` is a timm model created with ``num_classes=0`` (pooled) or
``features_only=True`` (for a decoder). The second renames things: FeatureListNet flattens the
first level of Sequential containers (``stages.0`` becomes ``stages_0``, ConvNeXt, RegNet) and
FeatureGetterNet (ViT and friends) keeps the model under ``model.``. Export, ``init_from``,
freezing by stage and layer-wise LR decay all need the plain model's names, the ones a timm
checkpoint and timm's ``group_matcher`` use. ``reference_model`` builds that plain model on the
meta device (names and shapes, no memory, well under a second) and ``timm_keys`` maps every key
of ``net`` onto it; a key that does not map is an error, never silently dropped.
"""
from __future__ import annotations

from typing import Iterable

import timm
import torch
from torch import nn

from foodmtl.config.names import timm_name


def reference_model(name: str) -> nn.Module:
    """The plain timm model ``name`` with its classifier (on the meta device where timm allows)."""
    name = timm_name(name)
    try:
        with torch.device("meta"):
            return timm.create_model(name)
    except (RuntimeError, NotImplementedError):  # an __init__ that reads tensor values (.item())
        return timm.create_model(name)


def timm_key(key: str, known: set[str]) -> str | None:
    """``key`` of a (features_only) net in the plain model's namespace, or None: as it is; without
    FeatureGetterNet's ``model.``; or with one ``_`` of its first part read as the ``.`` that
    FeatureListNet flattened (``stages_0.blocks.1.x`` -> ``stages.0.blocks.1.x``)."""
    if key in known:
        return key
    if key.startswith("model.") and key[len("model."):] in known:
        return key[len("model."):]
    head, dot, rest = key.partition(".")
    for i in (i for i, char in enumerate(head) if char == "_"):
        candidate = f"{head[:i]}.{head[i + 1:]}{dot}{rest}"
        if candidate in known:
            return candidate
    return None


def timm_keys(keys: Iterable[str], reference: nn.Module) -> dict[str, str]:
    """``{key: timm key}`` for every key; ValueError naming those that have no counterpart."""
    known = set(reference.state_dict())
    mapped = {key: timm_key(key, known) for key in keys}
    lost = [key for key, name in mapped.items() if name is None]
    if lost:
        raise ValueError(f"{len(lost)} backbone key(s) have no counterpart in timm's "
                         f"{type(reference).__name__}: {', '.join(lost[:5])}")
    return mapped


def named_timm_parameters(net: nn.Module, reference: nn.Module) -> dict[str, nn.Parameter]:
    """``net``'s parameters by their timm names."""
    names = timm_keys([n for n, _ in net.named_parameters()], reference)
    return {names[n]: p for n, p in net.named_parameters()}


def layer_ids(reference: nn.Module, coarse: bool) -> dict[str, int]:
    """timm's layer id of every parameter of the plain model (``group_matcher``; 0 is the stem, the
    classifier comes last); ValueError for a model without a group_matcher."""
    if not hasattr(reference, "group_matcher"):
        raise ValueError(f"timm's {type(reference).__name__} has no group_matcher to group its layers by")
    return timm.models.group_parameters(reference, reference.group_matcher(coarse=coarse), reverse=True)
