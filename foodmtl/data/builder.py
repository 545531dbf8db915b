"""The path from a DataConfig to tasks and DataLoaders: each source read by its data set's module
(``foodmtl.data.sets``), split, merged, and wrapped in datasets with their transforms."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch.utils.data import DataLoader

from foodmtl.config import DataConfig, SourceConfig

from foodmtl.errors import ConfigError
from foodmtl.data.dataset import FoodDataset, collate
from foodmtl.data import sets
from foodmtl.data.sampler import ResumableSampler
from foodmtl.data.table import SampleTable, merge_vocab
from foodmtl.data.transforms import eval_transform, train_transform
from foodmtl.data.validation import VAL, with_test_split, with_validation
from foodmtl.utils.registry import unknown_name_error
from foodmtl.tasks import KNOWN_TASKS, TaskSpec, get_kind

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
    test: FoodDataset | None = None       # data.test_split, scored once at the end (None: no test split)
    train_weights: list[float] | None = None  # per-sample draw weights of a mixed run
    notes: list[str] = field(default_factory=list)  # what each source's reader noticed (SampleTable.notes)

    def print_notes(self, show: bool = True) -> None:
        """``note: <data set>: <note>`` on stderr for each reader note, as data_prep/verify.py prints
        them (``show``: the process that reports, rank 0)."""
        if show:
            print("".join(f"note: {note}\n" for note in self.notes), end="", file=sys.stderr, flush=True)


@dataclass
class SourceSplits:
    source: SourceConfig
    train: pd.DataFrame
    eval: pd.DataFrame
    test: pd.DataFrame | None
    vocab: dict[str, list[str]]
    notes: list[str]


def test_split_of(source: SourceConfig, cfg: DataConfig) -> str | None:
    """The split scored once at the end, or None where there is none apart from the eval split."""
    split = source.test_split or cfg.test_split
    return None if split == (source.eval_split or cfg.eval_split) else split


def read_source(source: SourceConfig, cfg: DataConfig, seed: int) -> SourceSplits:
    options = sets.LoadOptions(taxonomy=source.taxonomy, ingredient_list=source.ingredient_list)
    table = sets.load(source.dataset, source.root, options)
    test = test_split_of(source, cfg)
    wanted = (source.train_split or cfg.train_split, source.eval_split or cfg.eval_split, *([test] if test else []))
    frame = with_test_split(table.frame, sets.test_split(source.dataset))
    if VAL in wanted:  # model selection on validation: the release's, or carved out of train
        frame = with_validation(frame, cfg.val_fraction, cfg.val_seed, "dish" if "dish" in frame else None)
    frame = limit_per_split(frame, cfg.limit, seed)
    parts = []
    for split in wanted:
        part = frame[frame["split"] == split].reset_index(drop=True)
        if len(part) == 0:
            raise ConfigError(f"split '{split}' of {source.dataset} at {source.root} is empty; "
                              f"splits: {sorted(frame['split'].unique())}")
        parts.append(part)
    return SourceSplits(source, parts[0], parts[1], parts[2] if test else None, table.vocab,
                        [f"{source.dataset}: {n}" for n in table.notes])


def sources_of(cfg: DataConfig) -> list[SourceConfig]:
    return list(cfg.sources) or [SourceConfig(cfg.dataset, cfg.root, cfg.taxonomy, ingredient_list=cfg.ingredient_list)]


def build_data(cfg: DataConfig, task_names: list[str], seed: int = 0,
               task_options: dict[str, dict] | None = None) -> DataBundle:
    parts = [read_source(s, cfg, seed) for s in sources_of(cfg)]
    vocab = merge_vocab([p.vocab for p in parts], [f"source {p.source.dataset} at {p.source.root}" for p in parts])
    train = SampleTable(pd.concat([p.train for p in parts], ignore_index=True), vocab)
    tasks = fit_tasks(build_tasks(task_names, vocab, task_options), train)
    evaluation = SampleTable(pd.concat([p.eval for p in parts], ignore_index=True), vocab)
    tests = [p.test for p in parts if p.test is not None]
    test = SampleTable(pd.concat(tests, ignore_index=True), vocab) if tests else None
    weights = None
    if len(parts) > 1:  # each source gets its configured share of the draws, whatever its size
        weights = [p.source.weight / len(p.train) for p in parts for _ in range(len(p.train))]
    augment = train_transform(cfg.image_size, cfg.augment, elastic=cfg.elastic)
    def held_out(table: SampleTable) -> FoodDataset:
        return FoodDataset(table, tasks, eval_transform(cfg.image_size), cfg.strict)

    return DataBundle(tasks, FoodDataset(train, tasks, augment, cfg.strict), held_out(evaluation),
                      held_out(test) if test is not None else None, weights, [note for p in parts for note in p.notes])


def train_loader(dataset: FoodDataset, batch_size: int, workers: int, seed: int = 0, rank: int = 0,
                 world: int = 1, pin_memory: bool = False, weights: list[float] | None = None) -> DataLoader:
    """Shuffled (or drawn by ``weights``), rank-sharded, resumable; the last incomplete batch is dropped."""
    sampler = ResumableSampler(len(dataset), shuffle=True, seed=seed, rank=rank, world=world, weights=weights)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=collate, drop_last=True, pin_memory=pin_memory,
                      persistent_workers=workers > 0,
                      # its own generator: creating an iterator must not consume the global RNG
                      generator=torch.Generator().manual_seed(seed))
