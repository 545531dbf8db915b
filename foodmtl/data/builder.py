"""Data-set registry and the path from a DataConfig to tasks and DataLoaders."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader

from foodmtl.config import ConfigError, DataConfig, SourceConfig
from foodmtl.data.dataset import FoodDataset, collate
from foodmtl.data.paths import require_path
from foodmtl.data.sampler import ResumableSampler
from foodmtl.data.table import SampleTable
from foodmtl.data.transforms import eval_transform, train_transform
from foodmtl.registry import Registry, unknown_name_error
from foodmtl.tasks import KNOWN_TASKS, TaskSpec, get_kind

DATASETS: Registry = Registry("dataset")

SYNTHFOOD_HINT = "python data_prep/make_synthfood.py --out {root}"


@DATASETS.register("synthfood")
def synthfood(root: str, taxonomy: str | None) -> SampleTable:
    """SynthFood: Food-101 layout + taxonomy.csv (dish-level category and cuisine) + FoodSeg103
    masks + the Nutrition5k layout's per-image ingredients, mass, calories and macros, joined by
    image id. A SynthFood written before version 2 has no Nutrition5k part: its ingredients are
    the taxonomy's recipes, and it labels no regression task."""
    from foodmtl.data.food101 import read_food101
    from foodmtl.data.foodseg103 import read_foodseg103
    from foodmtl.data.nutrition5k import TOTALS, read_nutrition5k
    from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

    root = Path(root)
    require_path(root / "food101", "SynthFood", SYNTHFOOD_HINT.format(root=root))
    table = attach_taxonomy(read_food101(root / "food101"), load_taxonomy(taxonomy or str(root / "taxonomy.csv")))
    image_id = table.frame["image"].map(lambda p: Path(p).stem)
    seg = read_foodseg103(root / "foodseg103")
    table.frame["mask"] = image_id.map(dict(zip(seg.frame["image"].map(lambda p: Path(p).stem), seg.frame["mask"])))
    table.vocab["segmentation"] = seg.vocab["segmentation"]
    attach_instances(table, image_id, root / "foodseg103")
    if (root / "nutrition5k").is_dir():
        n5k = read_nutrition5k(root / "nutrition5k")
        per_image = n5k.frame.set_index(n5k.frame["image"].map(lambda p: Path(p).parent.name.removeprefix("dish_")))
        for column in ("ingredients", *TOTALS):
            table.frame[column] = image_id.map(per_image[column]).astype(object if column == "ingredients" else float)
        table.vocab.update({task: n5k.vocab[task] for task in TOTALS})
        table.vocab["ingredients"] = ordered_union(table.vocab.get("ingredients", []), n5k.vocab["ingredients"])
    return table


def attach_instances(table: SampleTable, image_id: pd.Series, foodseg: Path) -> None:
    """SynthFood's COCO instance json per split (written since the instances task), joined by image id."""
    from foodmtl.data.coco_instances import read_coco_instances

    files = sorted(foodseg.glob("instances_*.json"))
    if not files:
        return
    parts = [read_coco_instances(f, foodseg / "Images" / "img_dir" / f.stem.removeprefix("instances_"),
                                 f.stem.removeprefix("instances_")) for f in files]
    frame = pd.concat([p.frame for p in parts])
    table.frame["instances"] = image_id.map(dict(zip(frame["image"].map(lambda p: Path(p).stem), frame["instances"])))
    table.vocab["instances"] = parts[0].vocab["instances"]
    table.notes.extend(note for p in parts for note in p.notes)


def ordered_union(first: list[str], second: list[str]) -> list[str]:
    return first + [name for name in second if name not in first]


@DATASETS.register("nutrition5k")
def nutrition5k(root: str, taxonomy: str | None) -> SampleTable:
    """Nutrition5k overhead RGB: per-dish ingredients, mass, calories, fat, carb, protein."""
    from foodmtl.data.nutrition5k import read_nutrition5k

    return read_nutrition5k(root)


@DATASETS.register("vireofood172")
def vireofood172(root: str, taxonomy: str | None) -> SampleTable:
    """VireoFood-172: dish and per-image ingredients. ``taxonomy=my.csv`` adds category and cuisine
    by dish name; the images' own ingredient labels stay."""
    from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy
    from foodmtl.data.vireofood172 import read_vireofood172

    table = read_vireofood172(root)
    if not taxonomy:
        return table
    joined = attach_taxonomy(table, load_taxonomy(taxonomy))
    joined.frame["ingredients"] = table.frame["ingredients"]
    return SampleTable(joined.frame, {**joined.vocab, "ingredients": table.vocab["ingredients"]}, table.notes)


@DATASETS.register("uecfoodpix")
def uecfoodpix(root: str, taxonomy: str | None) -> SampleTable:
    """UEC-FoodPix Complete: masks only (their classes are ingredients with
    ``task_options.ingredients.from_masks``); no dish label, so no taxonomy to join."""
    from foodmtl.data.uecfoodpix import read_uecfoodpix

    if taxonomy:
        raise ConfigError("uecfoodpix has no dish label to join a taxonomy on; drop data.taxonomy")
    return read_uecfoodpix(root)


@DATASETS.register("food101")
def food101(root: str, taxonomy: str | None) -> SampleTable:
    from foodmtl.data.food101 import read_food101
    from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

    return attach_taxonomy(read_food101(root), load_taxonomy(taxonomy or "food101"))


@DATASETS.register("foodx251")
def foodx251(root: str, taxonomy: str | None) -> SampleTable:
    from foodmtl.data.foodx251 import read_foodx251
    from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

    return attach_taxonomy(read_foodx251(root), load_taxonomy(taxonomy or "foodx251"))


@DATASETS.register("food2k")
def food2k(root: str, taxonomy: str | None) -> SampleTable:
    """Dish only by default: the builtin taxonomies match 1 of its 2,000 names (24 after normalising;
    see experiments/food2k/dish.yaml); ``taxonomy=my.csv`` joins a CSV keyed by its names."""
    from foodmtl.data.food2k import read_food2k
    from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

    table = read_food2k(root)
    return attach_taxonomy(table, load_taxonomy(taxonomy)) if taxonomy else table


@DATASETS.register("food1k")
def food1k(root: str, taxonomy: str | None) -> SampleTable:
    """Dish only by default (classes are ids: the release names none)."""
    from foodmtl.data.food2k import read_food1k
    from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

    table = read_food1k(root)
    return attach_taxonomy(table, load_taxonomy(taxonomy)) if taxonomy else table


@DATASETS.register("foodseg103")
def foodseg103(root: str, taxonomy: str | None) -> SampleTable:
    from foodmtl.data.foodseg103 import read_foodseg103

    return read_foodseg103(root)


@DATASETS.register("coco")
def coco(root: str, taxonomy: str | None) -> SampleTable:
    """COCO-format masks (e.g. the Food Recognition Benchmark, UEC-FoodPix converted):
    ``root/<split>/images/`` + ``root/<split>/annotations.json``, with masks converted once
    into ``root/<split>/masks/`` by data_prep/coco_to_masks.py."""
    from foodmtl.data.coco import read_coco_masks

    return per_split(root, "images", f"COCO data not found: no {root}/<split>/images/ folder",
                     lambda split: read_coco_masks(split / "masks", split / "images", split.name))


@DATASETS.register("coco_instances")
def coco_instances(root: str, taxonomy: str | None) -> SampleTable:
    """COCO instance json read directly (polygons, RLE; foodmtl/data/coco_instances.py):
    ``root/<split>/images/`` + ``root/<split>/annotations.json``; no conversion step."""
    from foodmtl.data.coco_instances import read_coco_instances

    return per_split(root, "annotations.json", f"COCO instances not found: no {root}/<split>/annotations.json",
                     lambda split: read_coco_instances(split / "annotations.json", split / "images", split.name))


def per_split(root: str, marker: str, missing: str, read) -> SampleTable:
    """One table of ``read(folder)`` over the sub-folders of ``root`` that hold ``marker``."""
    splits = sorted(d for d in Path(root).glob("*") if (d / marker).exists())
    if not splits:
        raise FileNotFoundError(missing)
    tables = [read(split) for split in splits]
    return SampleTable(pd.concat([t.frame for t in tables], ignore_index=True),
                       merge_vocab([t.vocab for t in tables]), [n for t in tables for n in t.notes])


def build_tasks(names: list[str], vocab: dict[str, list[str]],
                options: dict[str, dict] | None = None) -> list[TaskSpec]:
    """TaskSpecs for the configured task names, with classes from the data's vocabulary and each
    kind's options (``task_options``) validated. Options of a known task that this run does not
    train are checked and left unused, so one base config serves its single-task baselines."""
    options = options or {}
    for name in options:
        if name not in KNOWN_TASKS:
            raise unknown_name_error("task in task_options", name, KNOWN_TASKS)
    specs = []
    for name in [*names, *(n for n in options if n not in names)]:
        if name not in KNOWN_TASKS:
            raise unknown_name_error("task", name, KNOWN_TASKS)
        kind = get_kind(KNOWN_TASKS[name].kind)
        try:
            checked = kind.check_options(name, dict(options.get(name) or {}))
            if name not in names:
                continue
            classes = kind.classes(name, vocab, checked)
            if not classes:
                raise ValueError(f"task '{name}' has no labels in this data set; it labels: {sorted(vocab)}")
            specs.append(kind.prepare(TaskSpec(name, kind.name, tuple(classes), checked), vocab))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return specs


def fit_tasks(tasks: list[TaskSpec], train: SampleTable) -> list[TaskSpec]:
    """Each task with what its kind learns from the training split (e.g. regression mean/std)."""
    fitted = []
    for spec in tasks:
        kind = get_kind(spec.kind)
        try:
            fitted.append(kind.fit(spec, train.frame[KNOWN_TASKS[spec.name].column]))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return fitted


def limit_per_split(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    if limit <= 0:
        return frame
    parts = [g.sample(n=min(limit, len(g)), random_state=seed) for _, g in frame.groupby("split", sort=False)]
    return pd.concat(parts).reset_index(drop=True)


@dataclass
class DataBundle:
    tasks: list[TaskSpec]
    train: FoodDataset
    eval: FoodDataset
    train_weights: list[float] | None = None  # per-sample draw weights of a mixed run


@dataclass
class SourceSplits:
    source: SourceConfig
    train: pd.DataFrame
    eval: pd.DataFrame
    vocab: dict[str, list[str]]


def read_source(source: SourceConfig, cfg: DataConfig, seed: int) -> SourceSplits:
    table = DATASETS.get(source.dataset)(source.root, source.taxonomy)
    frame = limit_per_split(table.frame, cfg.limit, seed)
    parts = []
    for split in (source.train_split or cfg.train_split, source.eval_split or cfg.eval_split):
        part = frame[frame["split"] == split].reset_index(drop=True)
        if len(part) == 0:
            raise ConfigError(f"split '{split}' of {source.dataset} at {source.root} is empty; "
                              f"splits: {sorted(frame['split'].unique())}")
        parts.append(part)
    return SourceSplits(source, parts[0], parts[1], table.vocab)


def merge_vocab(vocabs: list[dict[str, list[str]]]) -> dict[str, list[str]]:
    """Union of class names per task, in order of first appearance; mask ids must agree."""
    merged: dict[str, list[str]] = {}
    for vocab in vocabs:
        for task, names in vocab.items():
            if task == "segmentation" and merged.get(task, names) != names:
                raise ConfigError("sources disagree on the segmentation classes; masks store class ids, "
                                  "so remap one source's masks to the other's category_id.txt first")
            known = merged.setdefault(task, [])
            known.extend(n for n in names if n not in known)
    return merged


def sources_of(cfg: DataConfig) -> list[SourceConfig]:
    return list(cfg.sources) or [SourceConfig(cfg.dataset, cfg.root, cfg.taxonomy)]


def build_data(cfg: DataConfig, task_names: list[str], seed: int = 0,
               task_options: dict[str, dict] | None = None) -> DataBundle:
    parts = [read_source(s, cfg, seed) for s in sources_of(cfg)]
    vocab = merge_vocab([p.vocab for p in parts])
    train = SampleTable(pd.concat([p.train for p in parts], ignore_index=True), vocab)
    tasks = fit_tasks(build_tasks(task_names, vocab, task_options), train)
    evaluation = SampleTable(pd.concat([p.eval for p in parts], ignore_index=True), vocab)
    weights = None
    if len(parts) > 1:  # each source gets its configured share of the draws, whatever its size
        weights = [p.source.weight / len(p.train) for p in parts for _ in range(len(p.train))]
    augment = train_transform(cfg.image_size, cfg.augment, elastic=cfg.elastic)
    return DataBundle(tasks, FoodDataset(train, tasks, augment, cfg.strict),
                      FoodDataset(evaluation, tasks, eval_transform(cfg.image_size), cfg.strict), weights)


def train_loader(dataset: FoodDataset, batch_size: int, workers: int, seed: int = 0, rank: int = 0,
                 world: int = 1, pin_memory: bool = False, weights: list[float] | None = None) -> DataLoader:
    """Shuffled (or drawn by ``weights``), rank-sharded, resumable; the last incomplete batch is dropped."""
    sampler = ResumableSampler(len(dataset), shuffle=True, seed=seed, rank=rank, world=world, weights=weights)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=collate, drop_last=True, pin_memory=pin_memory,
                      persistent_workers=workers > 0,
                      # its own generator: creating an iterator must not consume the global RNG
                      generator=torch.Generator().manual_seed(seed))
