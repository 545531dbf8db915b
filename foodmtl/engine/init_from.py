"""``model.init_from``: start a run from another foodmtl run's weights (e.g. FoodX-251 -> Food-101).

The backbone is taken whole, matched under timm's names (foodmtl/models/timm_keys.py), so a
classification run's pooled backbone can start a segmentation run's ``features_only`` one and
back; it must be the same timm architecture. A head, or the decoder, is taken only where its task
has the same name, kind and classes (in the same order) and, for the decoder, the same decoder and
options. Everything else keeps its fresh initialisation, as does the weighting strategy. The
source may be a best.pt (weights only) or a last.pt; with EMA on, both hold the EMA weights.

What was loaded and what was newly initialised, with the reason, is logged and returned as a
report the trainer writes into the run's summary.json (``init_from``) and checkpoints.
"""
from __future__ import annotations

import logging
from pathlib import Path

from torch import Tensor

from foodmtl.errors import ConfigError
from foodmtl.engine.checkpoint import CheckpointError, load_checkpoint
from foodmtl.engine.ema import model_state
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.models.timm_keys import reference_model, timm_keys
from foodmtl.config.names import timm_name
from foodmtl.tasks import TaskSpec

log = logging.getLogger(__name__)
NET = "backbone.net."


def init_from(model: MultiTaskModel, path: str, backbone: str, decoder: tuple[str, dict]) -> dict:
    """Load what fits from the checkpoint at ``path`` into ``model`` (``backbone``: its timm name;
    ``decoder``: its name and options); returns the report ``{checkpoint, loaded, initialised}``."""
    state = load_checkpoint(path)
    source = state["config"]["model"]
    if arch(source["backbone"]) != arch(backbone):
        raise ConfigError(f"model.init_from={path} holds a {source['backbone']} backbone, but model.backbone="
                          f"{backbone}: set model.backbone={source['backbone']}")
    weights = model_state(state["objective"])
    loaded, fresh = load_backbone(model, weights, backbone, path)
    tasks = {t["name"]: t for t in state["tasks"]}
    their_decoder = (source.get("decoder"), source.get("decoder_options") or {})
    for spec in model.tasks:
        part = f"heads.{spec.name}" if spec.name in model.heads else "decoder"
        why = mismatch(spec, tasks.get(spec.name))
        if not why and part == "decoder" and their_decoder != decoder:
            why = f"the source's decoder is {their_decoder[0]} with options {their_decoder[1]}"
        why = why or load_part(model, weights, part)
        if why:
            fresh[part] = why
        else:
            loaded.append(part)
    report = {"checkpoint": str(Path(path).resolve()), "loaded": loaded, "initialised": fresh}
    log.info("model.init_from=%s: loaded %s; newly initialised: %s", path, ", ".join(loaded),
             "; ".join(f"{k} ({v})" for k, v in fresh.items()) or "nothing")
    return report


def arch(name: str) -> str:
    return timm_name(name).split(".", 1)[0]


def load_backbone(model: MultiTaskModel, weights: dict[str, Tensor], backbone: str,
                  path: str) -> tuple[list[str], dict[str, str]]:
    """Every backbone tensor the source has under the same timm name; CheckpointError when a shape
    differs or nothing matches."""
    reference = reference_model(backbone)
    net = model.backbone.net
    theirs = {k[len(NET):]: v for k, v in weights.items() if k.startswith(NET)}
    try:
        by_name = {timm: theirs[k] for k, timm in timm_keys(theirs, reference).items()}
        ours = timm_keys(net.state_dict(), reference)
    except ValueError as exc:
        raise CheckpointError(f"model.init_from={path}: {exc}") from None
    current = net.state_dict()
    found = {k: by_name[timm] for k, timm in ours.items() if timm in by_name}
    if not found:
        raise CheckpointError(f"model.init_from={path}: no backbone weights found under model.backbone.net")
    wrong = [k for k, v in found.items() if v.shape != current[k].shape]
    if wrong:
        raise CheckpointError(f"model.init_from={path}: backbone shapes differ, e.g. {wrong[0]} "
                              f"{tuple(found[wrong[0]].shape)} vs {tuple(current[wrong[0]].shape)}")
    net.load_state_dict({**current, **found})
    missing = [k for k in current if k not in found]
    fresh = {"backbone": f"{len(missing)} tensor(s) not in the source, e.g. {missing[0]}"} if missing else {}
    return ["backbone"], fresh


def mismatch(spec: TaskSpec, saved: dict | None) -> str | None:
    """Why the source's task cannot give ``spec`` its head, or None."""
    if saved is None:
        return "no such task in the source"
    if saved["kind"] != spec.kind:
        return f"kind {saved['kind']} in the source"
    if tuple(saved["classes"]) != tuple(spec.classes):
        if len(saved["classes"]) != len(spec.classes):
            return f"classes differ: {len(saved['classes'])} in the source, {len(spec.classes)} here"
        return f"classes differ in names or order ({len(spec.classes)} each)"
    return None


def load_part(model: MultiTaskModel, weights: dict[str, Tensor], part: str) -> str | None:
    """Load ``part`` (``heads.<task>`` or ``decoder``) whole; the reason when it does not fit."""
    module = model.get_submodule(part)
    current = module.state_dict()
    prefix = part + "."
    theirs = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    if set(theirs) != set(current) or any(theirs[k].shape != current[k].shape for k in current):
        return "its tensors differ in the source"
    module.load_state_dict(theirs)
    return None
