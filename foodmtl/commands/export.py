"""``foodmtl export CHECKPOINT --out backbone.safetensors``: a run's backbone under timm's own key names.

The file holds the plain timm model's ``state_dict`` entries (no ``backbone.net.`` prefix, a
``features_only`` net's flattened or wrapped names mapped back, foodmtl/models/timm_keys.py), so
``model.pretrained_file=`` and plain ``timm.create_model(name, pretrained=True,
pretrained_cfg_overlay=dict(file=...))`` load it, with any ``num_classes`` or ``features_only``.
With EMA on, a checkpoint's weights are the EMA's (foodmtl/engine/ema.py), and so is the export.
"""
from __future__ import annotations

import argparse
from pathlib import Path

SUFFIX = ".safetensors"  # timm picks its loader by the file's extension


def register(sub) -> None:
    from foodmtl.commands import add_command

    p = add_command(sub, "export", "write a checkpoint's backbone with timm's key names (safetensors), for "
                                   "model.pretrained_file= or timm.create_model",
                    "foodmtl export runs/foodx251-finetune/<run>/checkpoints/best.pt --out foodx251.safetensors")
    p.add_argument("checkpoint", help="a foodmtl checkpoint, e.g. runs/<experiment>/<run>/checkpoints/best.pt")
    p.add_argument("--out", type=Path, required=True, help=f"the file to write, ending in {SUFFIX}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from foodmtl.errors import ConfigError

    if args.out.suffix != SUFFIX:
        raise ConfigError(f"--out {args.out}: the file must end in {SUFFIX} (timm picks its loader by the extension)")
    name, count, absent = export_backbone(args.checkpoint, args.out)
    print(f"wrote {count} tensors of {name} (timm's names) to {args.out}\nload with model.pretrained_file={args.out} "
          f"or timm.create_model('{name}', pretrained=True, pretrained_cfg_overlay=dict(file='{args.out}'))")
    if absent:
        print(f"not in this backbone (a features_only net ends at its last stage), so left to timm's "
              f"initialisation: {', '.join(absent)}")
    return 0


def export_backbone(checkpoint: str | Path, out: Path) -> tuple[str, int, list[str]]:
    """Write the backbone of ``checkpoint`` to ``out``; returns (timm name, tensors written, keys of the
    classifier-less plain model that the backbone lacks)."""
    from safetensors.torch import save

    from foodmtl.engine.checkpoint import CheckpointError, load_checkpoint
    from foodmtl.models.timm_keys import reference_model, timm_keys
    from foodmtl.config.names import timm_name
    from foodmtl.utils.output import atomic_write

    state = load_checkpoint(checkpoint)
    name = timm_name(state["config"]["model"]["backbone"])
    prefix = "model.backbone.net."
    weights = {k[len(prefix):]: v for k, v in state["objective"].items() if k.startswith(prefix)}
    reference = reference_model(name)
    try:
        names = timm_keys(weights, reference)
    except ValueError as exc:
        raise CheckpointError(f"{checkpoint}: {exc}") from None
    tensors = {names[k]: v.detach().contiguous() for k, v in weights.items()}
    data = save(tensors, metadata={"format": "pt", "timm_model": name, "foodmtl_checkpoint": str(checkpoint)})
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: f.write(data))
    return name, len(tensors), [k for k in without_classifier(reference) if k not in tensors]


def without_classifier(reference) -> list[str]:
    """The plain model's state_dict keys, its classifier (timm's ``pretrained_cfg['classifier']``) left out."""
    classifier = reference.pretrained_cfg.get("classifier") or ()
    heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    return [k for k in reference.state_dict() if not any(k.startswith(h + ".") for h in heads)]
