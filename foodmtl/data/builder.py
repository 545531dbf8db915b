"""Data-set registry and the path from a DataConfig to tasks and DataLoaders."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader

from foodmtl.config import ConfigError, DataConfig
from foodmtl.data.dataset import FoodDataset, collate
from foodmtl.data.sampler import ResumableSampler
from foodmtl.data.table import SampleTable
from foodmtl.data.transforms import eval_transform, train_transform
from foodmtl.registry import Registry, unknown_name_error
from foodmtl.tasks import TASK_KINDS, TaskSpec

DATASETS: Registry = Registry("dataset")

SYNTHFOOD_HINT = "python data_prep/make_synthfood.py --out {root}"


def require_dir(path: Path, hint: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"data not found: {path}\n  create it with: {hint}")


@DATASETS.register("synthfood")
def synthfood(cfg: DataConfig) -> SampleTable:
    """SynthFood: Food-101 layout + taxonomy.csv + FoodSeg103-layout masks, joined by image id."""
    from foodmtl.data.food101 import read_food101
    from foodmtl.data.foodseg103 import read_foodseg103
    from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

    root = Path(cfg.root)
    require_dir(root / "food101", SYNTHFOOD_HINT.format(root=root))
    table = attach_taxonomy(read_food101(root / "food101"), load_taxonomy(cfg.taxonomy or str(root / "taxonomy.csv")))
    seg = read_foodseg103(root / "foodseg103")
    masks = dict(zip(seg.frame["image"].map(lambda p: Path(p).stem), seg.frame["mask"]))
    table.frame["mask"] = table.frame["image"].map(lambda p: masks.get(Path(p).stem))
    table.vocab["segmentation"] = seg.vocab["segmentation"]
    return table


@DATASETS.register("food101")
def food101(cfg: DataConfig) -> SampleTable:
    from foodmtl.data.food101 import read_food101
    from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

    return attach_taxonomy(read_food101(cfg.root), load_taxonomy(cfg.taxonomy or "food101"))


@DATASETS.register("foodx251")
def foodx251(cfg: DataConfig) -> SampleTable:
    from foodmtl.data.foodx251 import read_foodx251
    from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

    return attach_taxonomy(read_foodx251(cfg.root), load_taxonomy(cfg.taxonomy or "foodx251"))


@DATASETS.register("foodseg103")
def foodseg103(cfg: DataConfig) -> SampleTable:
    from foodmtl.data.foodseg103 import read_foodseg103

    return read_foodseg103(cfg.root)


def build_tasks(names: list[str], vocab: dict[str, list[str]]) -> list[TaskSpec]:
    """TaskSpecs for the configured task names, with classes from the data's vocabulary."""
    specs = []
    for name in names:
        if name not in TASK_KINDS:
            raise unknown_name_error("task", name, TASK_KINDS)
        if not vocab.get(name):
            raise ConfigError(f"task '{name}' has no labels in this data set; it labels: {sorted(vocab)}")
        specs.append(TaskSpec(name, TASK_KINDS[name], tuple(vocab[name])))
    return specs


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


def build_data(cfg: DataConfig, task_names: list[str], seed: int = 0) -> DataBundle:
    table = DATASETS.get(cfg.dataset)(cfg)
    table = SampleTable(limit_per_split(table.frame, cfg.limit, seed), table.vocab)
    tasks = build_tasks(task_names, table.vocab)
    splits = {}
    for split in (cfg.train_split, cfg.eval_split):
        part = table.split(split)
        if len(part) == 0:
            raise ConfigError(f"split '{split}' of {cfg.dataset} at {cfg.root} is empty; "
                              f"splits: {sorted(table.frame['split'].unique())}")
        splits[split] = part
    train = FoodDataset(splits[cfg.train_split], tasks, train_transform(cfg.image_size), cfg.strict)
    evaluation = FoodDataset(splits[cfg.eval_split], tasks, eval_transform(cfg.image_size), cfg.strict)
    return DataBundle(tasks, train, evaluation)


def train_loader(dataset: FoodDataset, batch_size: int, workers: int, seed: int = 0,
                 rank: int = 0, world: int = 1, pin_memory: bool = False) -> DataLoader:
    """Shuffled, rank-sharded, resumable; the last incomplete batch is dropped."""
    sampler = ResumableSampler(len(dataset), shuffle=True, seed=seed, rank=rank, world=world)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=collate, drop_last=True, pin_memory=pin_memory,
                      persistent_workers=workers > 0,
                      # its own generator: creating an iterator must not consume the global RNG
                      generator=torch.Generator().manual_seed(seed))
