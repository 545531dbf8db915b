"""The experiment configuration's schema: one typed dataclass per section, and the value checks
that need no data (``validate``). Loading (YAML, ``_base_``, overrides) is in ``loading.py``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from foodmtl.errors import ConfigError


@dataclass
class SourceConfig:
    """One data set of a mixed run (``data.sources``)."""

    dataset: str = "synthfood"
    root: str = "data/synthfood"
    taxonomy: str | None = None
    ingredient_list: str = "simplified"  # Ingredients101 / Recipes5k: simplified | raw ingredient file
    weight: float = 1.0                 # relative share of each training epoch drawn from this source
    train_split: str | None = None      # None: data.train_split
    eval_split: str | None = None       # None: data.eval_split
    test_split: str | None = None       # None: data.test_split


@dataclass
class DataConfig:
    dataset: str = "synthfood"          # a module of foodmtl/data/sets
    root: str = "data/synthfood"
    taxonomy: str | None = None         # builtin name or CSV path; None: the data set's default
    ingredient_list: str = "simplified"  # Ingredients101 / Recipes5k: simplified | raw ingredient file
    # Mixed training: when non-empty, these replace dataset/root/taxonomy above; each
    # sample keeps only the labels its source has.
    sources: list[SourceConfig] = field(default_factory=list)
    train_split: str = "train"
    # Model selection (best.pt, train.best_metric) reads eval_split, evaluated after every epoch; the
    # test split is scored once, with best.pt, at the end (summary.json "test"); null or the eval split: none.
    eval_split: str = "val"
    test_split: str | None = "test"
    image_size: int = 128
    batch_size: int = 32
    eval_batch_size: int = 64
    num_workers: int = 2
    strict: bool = False                # raise on a corrupt image instead of skipping it
    augment: str = "standard"           # light | standard | strong: training augmentation preset (docs/transfer.md)
    elastic: bool = False               # elastic deformation in training augmentation (image + mask)
    limit: int = 0                      # >0: keep only this many samples per split (smoke runs)
    # A split named "val" is the release's validation split, or, where the release has none (or its val
    # serves as the test), this fraction of train, stratified by dish (foodmtl/data/validation.py)
    val_fraction: float = 0.1
    val_seed: int = 0


@dataclass
class ModelConfig:
    backbone: str = "resnet18"          # any timm model name
    pretrained: bool = False
    pretrained_file: str | None = None  # local .pth/.safetensors instead of the HF hub
    drop_rate: float = 0.0              # dropout before each head
    drop_path_rate: float | None = None  # None: the timm model's own default
    channels_last: bool = True
    sync_bn: bool = False               # SyncBatchNorm across ranks (CUDA only)
    decoder: str = "unet"               # segmentation decoder (docs/segmentation.md): unet, fpn, fcn, deeplabv3plus, ...
    decoder_options: dict[str, Any] = field(default_factory=dict)  # its options, checked per decoder
    freeze: str = "none"                # none | backbone (linear probe) | stages:N (stem + first N stages)
    init_from: str | None = None        # foodmtl checkpoint: its backbone + heads/decoder whose task matches


@dataclass
class WeightingConfig:
    name: str = "uniform"               # name in foodmtl.weighting.WEIGHTINGS
    options: dict[str, Any] = field(default_factory=dict)  # keyword options of the strategy
    # The learning rate of the strategy's own learned state: the optimizer group of its parameters
    # (uncertainty, GradNorm; scheduled by warmup-cosine like every group) or its own update rule's `lr`
    # (FAMO's Adam, constant as in the official code). None: optim.lr (FAMO: its options.lr, default 0.025).
    lr: float | None = None


@dataclass
class OptimConfig:
    name: str = "adamw"                 # timm optimizer (create_optimizer_v2): adamw, sgd, momentum, lamb, ...
    lr: float = 1e-3
    momentum: float = 0.9               # of the optimizers that have one (sgd, momentum, nesterov, lars, ...)
    betas: list[float] | None = None    # [β1, β2] of the Adam family (BETA_OPTIMIZERS); null: its own default
    backbone_lr_scale: float = 1.0      # backbone LR = this x lr
    layer_decay: float | None = None    # layer-wise LR decay over timm's layer groups of the backbone
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    grad_clip: float = 0.0              # 0: off
    label_smoothing: float = 0.0        # default of every multiclass task (task_options.<task>.label_smoothing wins)


LAST_EVALUATION = "last"  # train.best_metric: best.pt is the model of the final evaluation, chosen by no metric


@dataclass
class TrainConfig:
    epochs: int = 10
    seed: int = 0
    device: str = "auto"                # auto | cpu | cuda
    amp: str = "auto"                   # auto (bf16 on a GPU that has it, else none) | none | bf16 | fp16
    best_metric: str = "dish/top1"      # <task>/<metric> on eval_split picks best.pt; "last": the final model
    max_steps: int = 0                  # >0: stop after this many optimizer steps
    accum_steps: int = 1                # loader batches per optimizer step (gradient accumulation)
    compile: bool = False               # torch.compile the model (before the DDP wrap)
    log_every: int = 1                  # steps between train-metric records
    checkpoint_every: int = 0           # >0: also checkpoint every N steps (mid-epoch resume)
    keep_checkpoints: int = 0           # >0: keep the newest N step checkpoints besides last/best
    on_nonfinite: str = "error"         # error | skip: what a NaN/Inf loss does
    progress: bool = True               # progress bar (on a terminal; log files get a line per epoch)
    overlays: int = 8                   # eval images saved as mask overlays after training (seg runs)
    unfreeze_at: int = 0                # >0: a frozen backbone (model.freeze) trains from this many epochs on
    ema_decay: float = 0.0              # >0: EMA of the weights (timm ModelEmaV3), evaluated and saved as best.pt
    cudnn_benchmark: bool | None = None  # cuDNN autotuner; None: on with CUDA (engine/distributed.py)
    grad_diagnostics_every: int = 0     # >0: task-gradient cosines and norms every N steps (engine/diagnostics.py)
    grad_diagnostics_shared: bool = False  # also on the backbone's parameters (K more backward passes)


@dataclass
class TrackingConfig:
    wandb: str = "auto"                 # auto | online | offline | disabled
    project: str = "foodmtl"
    entity: str | None = None
    group: str | None = None            # None: the experiment name (an ablation's runs share it)
    job_type: str = "train"
    tags: list[str] = field(default_factory=list)
    log_checkpoints: bool = False       # best.pt and last.pt as W&B model artifacts at the end of training


@dataclass
class Config:
    experiment: str = "default"
    run: str | None = None              # run folder name; None: timestamp
    resume: str | None = None           # auto (run=NAME's, else the experiment's newest last.pt) or a checkpoint path
    resume_override: bool = False       # resume: accept overrides that change what the checkpoint means
    resumed_from: str | None = None     # set by the trainer: the checkpoint a new run continued from
    resume_changes: list[str] = field(default_factory=list)  # set by the trainer: overrides resume_override let in
    launch_dir: str | None = None       # set by the trainer: the folder it was started in; eval/predict resolve
                                        # relative paths (data.root) against it
    output_dir: str = "runs"
    tasks: list[str] = field(default_factory=lambda: ["dish", "category", "cuisine", "ingredients"])
    # per-task options of its kind, e.g. {mass: {loss: l1}} (see foodmtl/tasks/<kind>.py)
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    weighting: WeightingConfig = field(default_factory=WeightingConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    # Set by `foodmtl sweep`'s test stage (foodmtl/analysis/tuning.py): how this run's hyperparameters were
    # chosen, {criterion, split, trials, seeds, selected: {key: value}, tuning: path of tuning.json}; {}: not tuned.
    selection: dict[str, Any] = field(default_factory=dict)


SECTIONS = ("SourceConfig", "DataConfig", "ModelConfig", "WeightingConfig", "OptimConfig", "TrainConfig",
            "TrackingConfig")


INGREDIENT_LISTS = ("simplified", "raw")
CHOICES = {
    ("data", "augment"): ("light", "standard", "strong"),
    ("data", "ingredient_list"): INGREDIENT_LISTS,
    ("train", "amp"): ("auto", "none", "bf16", "fp16"),
    ("train", "device"): ("auto", "cpu", "cuda"),
    ("train", "on_nonfinite"): ("error", "skip"),
    ("tracking", "wandb"): ("auto", "online", "offline", "disabled"),
}


def validate(cfg: Config) -> None:
    """Value checks that need no data; data-dependent ones happen at build time."""
    for (section, key), allowed in CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in allowed:
            raise ConfigError(f"{section}.{key}={value!r}; choose one of {', '.join(allowed)}")
    if not cfg.tasks:
        raise ConfigError("tasks is empty; name at least one task")
    if len(set(cfg.tasks)) != len(cfg.tasks):
        raise ConfigError(f"tasks has duplicates: {cfg.tasks}")
    positive = {"data.image_size": cfg.data.image_size, "data.batch_size": cfg.data.batch_size,
                "data.eval_batch_size": cfg.data.eval_batch_size, "train.epochs": cfg.train.epochs,
                "optim.lr": cfg.optim.lr}
    for name, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{name}={value} must be > 0")
    if cfg.weighting.lr is not None and not cfg.weighting.lr > 0:
        raise ConfigError(f"weighting.lr={cfg.weighting.lr} must be > 0 (or null: optim.lr)")
    if cfg.train.accum_steps < 1:
        raise ConfigError(f"train.accum_steps={cfg.train.accum_steps} must be >= 1")
    if cfg.train.log_every < 1:
        raise ConfigError(f"train.log_every={cfg.train.log_every} must be >= 1")
    if cfg.train.grad_diagnostics_every < 0:
        raise ConfigError(f"train.grad_diagnostics_every={cfg.train.grad_diagnostics_every} must be >= 0 (0: off)")
    for i, source in enumerate(cfg.data.sources):
        if not source.weight > 0:
            raise ConfigError(f"data.sources[{i}].weight={source.weight} must be > 0")
        if source.ingredient_list not in INGREDIENT_LISTS:
            raise ConfigError(f"data.sources[{i}].ingredient_list={source.ingredient_list!r}; "
                              f"choose one of {', '.join(INGREDIENT_LISTS)}")
    for where, splits in split_choices(cfg):
        if splits["test"] is not None and splits["test"] == splits["train"]:
            raise ConfigError(f"{where}test_split={splits['test']!r} is the training split; name a held-out split "
                              "(or null for none)")
    if not 0 <= cfg.data.val_fraction < 1:
        raise ConfigError(f"data.val_fraction={cfg.data.val_fraction} must lie in [0, 1)")
    if cfg.data.num_workers < 0:
        raise ConfigError(f"data.num_workers={cfg.data.num_workers} must be >= 0")
    validate_transfer(cfg)
    validate_betas(cfg.optim)


def split_choices(cfg: Config) -> list[tuple[str, dict[str, str | None]]]:
    """(config prefix, {train, eval, test: split name}) of the data and of each source that names its own."""
    data = cfg.data
    base = {"train": data.train_split, "eval": data.eval_split, "test": data.test_split}
    out = [("data.", base)]
    for i, s in enumerate(data.sources):
        own = {"train": s.train_split, "eval": s.eval_split, "test": s.test_split}
        out.append((f"data.sources[{i}].", {k: own[k] or base[k] for k in base}))
    return out


BETA_OPTIMIZERS = ("adam", "adamp", "adamw", "lamb", "lion", "nadamw")  # the timm optimizers that take betas


def validate_betas(o: OptimConfig) -> None:
    """``optim.betas``: two moment decays in [0, 1), for an optimizer that keeps moments."""
    if o.betas is None:
        return
    if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
        raise ConfigError(f"optim.betas={o.betas} must be two values in [0, 1), e.g. [0.9, 0.999]")
    if o.name.lower() not in BETA_OPTIMIZERS:
        raise ConfigError(f"optim.betas is set but optim.name={o.name!r} takes no betas; "
                          f"use one of {', '.join(BETA_OPTIMIZERS)}, or drop optim.betas")


def validate_transfer(cfg: Config) -> None:
    """Ranges of the fine-tuning keys (docs/transfer.md); model.freeze and optim.name are read and
    checked in config_check."""
    o, t = cfg.optim, cfg.train
    if not o.backbone_lr_scale > 0:
        raise ConfigError(f"optim.backbone_lr_scale={o.backbone_lr_scale} must be > 0 (to keep the backbone "
                          "fixed: model.freeze=backbone)")
    if o.layer_decay is not None and not 0 < o.layer_decay <= 1:
        raise ConfigError(f"optim.layer_decay={o.layer_decay} must lie in (0, 1] (e.g. 0.75), or be null for none")
    if not 0 <= t.ema_decay < 1:
        raise ConfigError(f"train.ema_decay={t.ema_decay} must lie in [0, 1) (0: no EMA; e.g. 0.999)")
    if t.unfreeze_at < 0:
        raise ConfigError(f"train.unfreeze_at={t.unfreeze_at} must be >= 0 (0: never)")
    if t.unfreeze_at and t.unfreeze_at >= t.epochs:
        raise ConfigError(f"train.unfreeze_at={t.unfreeze_at} >= train.epochs={t.epochs}: the backbone would "
                          "never train; lower it, or drop it to keep the backbone frozen")
