"""``foodmtl predict CHECKPOINT IMAGE...``: classes per image as JSON, mask overlays as PNGs."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub) -> None:
    from foodmtl.commands import add_command

    p = add_command(sub, "predict", "predict dish, category, cuisine, ingredients (and masks) for images",
                    "foodmtl predict runs/synthfood-demo/<run>/checkpoints/best.pt photo.jpg --out predictions/")
    p.add_argument("checkpoint", help="a checkpoint, e.g. runs/<experiment>/<run>/checkpoints/best.pt")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--out", type=Path, help="write predictions.json and mask overlay PNGs here")
    p.add_argument("--threshold", type=float, default=0.5, help="list ingredients at or above this probability")
    p.add_argument("--top-k", type=int, default=5, help="classes listed for each single-label task")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is present")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from foodmtl.engine.distributed import pick_device
    from foodmtl.engine.inference import load_trained
    from foodmtl.engine.predict import predict

    device = pick_device("cpu" if args.cpu else "auto", 0)
    model, cfg, _ = load_trained(args.checkpoint, device=device)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    records = predict(model, args.images, cfg.data.image_size, device, args.threshold, args.top_k, args.out)
    text = json.dumps(records, indent=2)
    print(text)
    if args.out:
        (args.out / "predictions.json").write_text(text + "\n")
    failed = [r["image"] for r in records if "error" in r]
    if failed:
        print(f"could not read {len(failed)} image(s): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
