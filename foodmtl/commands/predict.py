"""``foodmtl predict CHECKPOINT IMAGE|FOLDER...``: classes per image as JSON, mask overlays as PNGs.

A folder stands for the images in it and in its sub-folders (``IMAGE_SUFFIXES``, any case; hidden
files and folders skipped), in sorted order. Without ``--out`` the JSON goes to stdout; with it,
to ``OUT/predictions.json`` (beside the overlay PNGs; an instances task's detections also go to
``OUT/coco_results.json``, COCO results format with the data set's category ids, an empty list
when none was reported) and stdout gets one summary line. A progress
bar shows on a terminal; ``--wandb`` logs the predictions as a W&B table (job_type=predict) in
the training run's project and group.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path, PurePosixPath

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def register(sub) -> None:
    from foodmtl.commands import add_command

    p = add_command(sub, "predict", "predict dish, category, cuisine, ingredients (and masks) for images",
                    "foodmtl predict runs/synthfood-demo/<run>/checkpoints/best.pt photos/ --out predictions/")
    p.add_argument("checkpoint", help="a checkpoint, e.g. runs/<experiment>/<run>/checkpoints/best.pt")
    p.add_argument("images", nargs="+", help="image files, or folders: their .jpg/.jpeg/.png/.webp/.bmp images, "
                                             "sub-folders included, hidden files and folders skipped")
    p.add_argument("--out", type=Path, help="write predictions.json and mask overlay PNGs here (stdout then gets "
                                            "one summary line instead of the JSON)")
    p.add_argument("--threshold", type=float, default=0.5, help="list ingredients at or above this probability")
    p.add_argument("--top-k", type=int, default=5, help="classes listed for each single-label task")
    p.add_argument("--coco-images", type=Path, metavar="JSON",
                   help="a COCO json listing the images (images[].file_name, id): coco_results.json takes their "
                        "ids instead of positions, as a benchmark's ground truth needs")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is present")
    p.add_argument("--wandb", choices=["auto", "online", "offline"],
                   help="also log the predictions as a W&B table to a new run (job_type=predict) in the training "
                        "run's project and group; its wandb/ folder goes in --out, else the current folder")
    p.set_defaults(func=run)


def image_paths(items: list[str]) -> list[str]:
    """Files as given; each folder replaced by its images (recursively, sorted). FileNotFoundError
    for a folder without images."""
    paths = []
    for item in items:
        folder = Path(item)
        if not folder.is_dir():
            paths.append(item)
            continue
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        if not found:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {item} or its sub-folders")
        paths += [str(p) for p in found]
    return paths


def coco_image_ids(annotation_file: Path, paths: list[str]) -> list[int]:
    """Each path's id in ``annotation_file``'s ``images``: the entry whose ``file_name`` is the path's
    longest trailing part (``a.jpg`` or ``val/a.jpg``); DataError for a file without such a list,
    ConfigError naming images it does not list."""
    from foodmtl.data.paths import read_json
    from foodmtl.errors import ConfigError, DataError

    if not annotation_file.is_file():
        raise FileNotFoundError(f"--coco-images {annotation_file}: no such file")
    content = read_json(annotation_file)
    images = content.get("images") if isinstance(content, dict) else None
    if not isinstance(images, list) or not all(isinstance(i, dict) and isinstance(i.get("file_name"), str)
                                               and isinstance(i.get("id"), int) for i in images):
        raise DataError(annotation_file, "no COCO 'images' list whose entries have a file_name and an id")
    ids = {PurePosixPath(i["file_name"]).parts: i["id"] for i in images}
    found = [listed_id(Path(p).resolve().parts, ids) for p in paths]
    missing = [p for p, f in zip(paths, found) if f is None]
    if missing:
        raise ConfigError(f"--coco-images {annotation_file} lists {len(paths) - len(missing)} of the {len(paths)} "
                          f"images; not: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    return found


def listed_id(parts: tuple[str, ...], ids: dict[tuple[str, ...], int]) -> int | None:
    """The id of the longest trailing run of ``parts`` that ``ids`` lists, or None."""
    return next((ids[parts[k:]] for k in range(len(parts)) if parts[k:] in ids), None)


def run(args: argparse.Namespace) -> int:
    paths = image_paths(args.images)  # before torch is imported: a folder without images fails at once
    image_ids = coco_image_ids(args.coco_images, paths) if args.coco_images else None

    from foodmtl.engine.distributed import pick_device
    from foodmtl.engine.inference import load_trained
    from foodmtl.engine.predict import predict
    from foodmtl.utils.output import OutputError
    from foodmtl.tracking.progress import progress

    device = pick_device("cpu" if args.cpu else "auto", 0)
    model, cfg, _ = load_trained(args.checkpoint, device=device)
    if args.out:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(args.out, exc) from None
    bar = progress(paths, "predict", unit="img")  # predict() only iterates over the paths
    records = predict(model, bar, cfg.data.image_size, device, args.threshold, args.top_k, args.out)
    report(records, args.out, image_ids)
    if args.wandb:
        log_to_wandb(args.wandb, cfg, args.checkpoint, records, args.out or Path.cwd())
    failed = [r["image"] for r in records if "error" in r]
    if failed:
        print(f"could not read {len(failed)} image(s): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def report(records: list[dict], out: Path | None, image_ids: list[int] | None = None) -> None:
    """The JSON on stdout; with ``out``, in ``out/predictions.json`` and one line on stdout (and the
    instances as COCO results, ``image_ids`` per record or 1-based positions)."""
    from foodmtl.utils.output import atomic_write

    text = json.dumps(records, indent=2)
    if out is None:
        print(text)
        return
    atomic_write(out / "predictions.json", lambda f: f.write(f"{text}\n".encode()))
    read = sum(1 for r in records if "error" not in r)
    overlays = sum(1 for r in records if overlay_of(r))
    print(f"predicted {read} of {len(records)} image(s): {out / 'predictions.json'}"
          + (f", {overlays} overlay PNG(s)" if overlays else ""))
    if any(instance_lists(r) for r in records):
        write_coco_results(coco_results(records, image_ids), out / "coco_results.json")


def write_coco_results(results: list[dict], path: Path) -> None:
    """The list as it is (floats at full precision), an empty one included, which is said."""
    from foodmtl.tasks.instances import REPORT_SCORE
    from foodmtl.utils.output import atomic_write

    atomic_write(path, lambda f: f.write(json.dumps(results).encode()))
    if not results:
        print(f"no instance scored {REPORT_SCORE} or more: {path} is an empty list")


def coco_results(records: list[dict], image_ids: list[int] | None = None) -> list[dict]:
    """The instances of every image as one COCO results list (``image_id``: from ``image_ids``, else the
    image's 1-based position in predictions.json), for pycocotools' ``loadRes`` or a benchmark server."""
    ids = image_ids or range(1, len(records) + 1)
    return [{"image_id": k, **{key: v for key, v in found.items() if key != "class"}}
            for k, record in zip(ids, records) for found in
            (instance for instances in instance_lists(record) for instance in instances)]


def instance_lists(record: dict) -> list[list[dict]]:
    """The ``instances`` list of each task of one image's record that detects instances."""
    return [value["instances"] for value in record.values() if isinstance(value, dict) and "instances" in value]


def log_to_wandb(mode: str, cfg, checkpoint: str, records: list[dict], folder: Path) -> None:
    """One table row per image: its path, its overlay (if drawn) and each task's prediction as JSON."""
    import wandb

    from foodmtl.tracking.job_run import job_run

    tasks = [t for t in cfg.tasks if any(t in r for r in records)]
    rows = [[r["image"], wandb.Image(overlay) if (overlay := overlay_of(r)) else None, r.get("error"),
             *(json.dumps(r[t]) if t in r else None for t in tasks)] for r in records]
    writer = job_run(mode, cfg, "predict", folder, checkpoint)
    writer.log({"step": 0, "predictions": wandb.Table(columns=["image", "overlay", "error", *tasks], data=rows)})
    writer.finish()


def overlay_of(record: dict) -> str | None:
    return next((v["overlay"] for v in record.values() if isinstance(v, dict) and "overlay" in v), None)
