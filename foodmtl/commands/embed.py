"""``foodmtl embed CHECKPOINT --out DIR``: t-SNE maps of pooled features, by dish and by cuisine (a
progress bar over the feature pass on a terminal)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    from foodmtl.commands import add_command

    p = add_command(sub, "embed", "t-SNE maps of a checkpoint's backbone features, coloured by dish and cuisine",
                    "foodmtl embed runs/synthfood-demo/<run>/checkpoints/best.pt --out figures/")
    p.add_argument("checkpoint", help="a checkpoint, e.g. runs/<experiment>/<run>/checkpoints/best.pt")
    p.add_argument("overrides", nargs="*", default=[], help="key=value, e.g. data.root=/data/food-101")
    p.add_argument("--out", type=Path, required=True, help="folder for tsne_dish.png and tsne_cuisine.png")
    p.add_argument("--split", choices=("eval", "train"), default="eval",
                   help="the config's eval or train split (both without augmentation)")
    p.add_argument("--limit", type=int, default=2000, help="at most this many random samples (0: all)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is present")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from torch.utils.data import DataLoader

    from foodmtl.data.dataset import collate
    from foodmtl.engine.distributed import pick_device
    from foodmtl.engine.inference import load_with_data
    from foodmtl.tracking.progress import progress
    from foodmtl.analysis.embedding import embedding_maps, subset, unaugmented

    device = pick_device("cpu" if args.cpu else "auto", 0)
    model, cfg, data = load_with_data(args.checkpoint, args.overrides, device)
    dataset = data.eval if args.split == "eval" else unaugmented(data.train, cfg.data.image_size)
    loader = DataLoader(subset(dataset, args.limit, cfg.train.seed), batch_size=cfg.data.eval_batch_size,
                        num_workers=cfg.data.num_workers, collate_fn=collate)
    args.out.mkdir(parents=True, exist_ok=True)
    bar = progress(loader, "features", unit="batch")  # embedding_maps only iterates over the loader
    for path in embedding_maps(model, bar, device, args.out, args.split, args.checkpoint):
        print(path)
    return 0
