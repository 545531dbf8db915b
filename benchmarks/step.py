"""Train-step cost of foodmtl's multi-task Objective against a bare timm classifier.

On one random batch: the bare timm backbone with one linear classifier (cross-entropy), the
foodmtl Objective (MultiTaskModel with dish, category, cuisine and ingredients heads,
per-task losses, uniform weighting), and the same with a segmentation task (``--decoder``,
U-Net by default; a comma-separated list gives one row per decoder) and, with ``--instances``,
with a Mask R-CNN instances task (torchvision's default head sizes; 3 boxes and masks per image,
``CLASSES["instances"]`` classes), and with ``--diagnostics EVERY`` with the gradient diagnostics
(engine/diagnostics.py) measured on every step, on the representation and also on the backbone's
parameters, and their overhead per step at ``train.grad_diagnostics_every=EVERY``. Each row is forward,
backward and AdamW step; the rows take turns step by step, so drift in machine load hits them
alike. Prints median seconds per step and the ratio to the bare model; on CUDA also images/s
and peak memory of a row measured alone:

    python benchmarks/step.py --backbone resnet18 --batch 16 --size 128 --steps 10
    python benchmarks/step.py --decoder unet,fpn,fcn,deeplabv3plus --steps 5
    python benchmarks/step.py --instances --steps 5
    python benchmarks/step.py --diagnostics 10 --decoder unet --clock process --threads 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import masks_to_boxes

from foodmtl.config import OptimConfig
from foodmtl.data.instance_targets import Instances
from foodmtl.engine.diagnostics import GradDiagnostics
from foodmtl.engine.distributed import DistInfo
from foodmtl.engine.evaluate import autocast
from foodmtl.engine.objective import Objective, StepOutput
from foodmtl.engine.optim import param_groups
from foodmtl.models.backbone import Backbone
from foodmtl.models.decoders import build_decoder, decoder_name, encoder_output_stride
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.utils.registry import UnknownNameError
from foodmtl.tasks import TaskSpec, get_kind
from foodmtl.weighting import build_weighting

CLASSES = {"dish": 101, "category": 20, "cuisine": 12, "ingredients": 50, "segmentation": 104, "instances": 103}
KINDS = {"ingredients": "multilabel", "segmentation": "segmentation", "instances": "instances"}
INSTANCES_PER_IMAGE = 3
WEIGHT_DECAY = 0.05

Step = Callable[[], None]


def make_batch(tasks: list[str], batch: int, size: int, device: torch.device) -> tuple[Tensor, dict[str, Tensor]]:
    gen = torch.Generator().manual_seed(0)
    targets = {t: torch.randint(0, n, (batch,), generator=gen) for t, n in CLASSES.items()}
    targets["ingredients"] = (torch.rand(batch, CLASSES["ingredients"], generator=gen) < 0.1).float()
    targets["segmentation"] = torch.randint(0, CLASSES["segmentation"], (batch, size, size), generator=gen)
    if "instances" in tasks:
        targets["instances"] = instance_targets(batch, size, gen)
    images = torch.randn(batch, 3, size, size, generator=gen)
    return images.to(device), {t: targets[t].to(device) for t in tasks}


def instance_targets(batch: int, size: int, gen: torch.Generator) -> Instances:
    """``INSTANCES_PER_IMAGE`` random squares of a quarter to a half of the side per image."""
    images = []
    for _ in range(batch):
        side = torch.randint(size // 4, size // 2, (INSTANCES_PER_IMAGE,), generator=gen)
        corner = (torch.rand(INSTANCES_PER_IMAGE, 2, generator=gen) * (size - side[:, None])).long()
        masks = torch.zeros(INSTANCES_PER_IMAGE, size, size, dtype=torch.uint8)
        for m, (y, x), s in zip(masks, corner.tolist(), side.tolist()):
            m[y:y + s, x:x + s] = 1
        images.append({"boxes": masks_to_boxes(masks).float(), "masks": masks,
                       "labels": torch.randint(0, CLASSES["instances"], (INSTANCES_PER_IMAGE,), generator=gen)})
    return Instances(images, [str(i) for i in range(batch)])


def optimizer_step(loss_fn: Callable[[], Tensor], module: nn.Module, groups, args) -> Step:
    """One train step: zero grads, forward under autocast, (scaled) backward, AdamW step."""
    optimizer = torch.optim.AdamW(groups, lr=1e-4)
    scaler = torch.amp.GradScaler(enabled=args.amp == "fp16")
    module.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(args.device, args.amp):
            loss = loss_fn()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return step


def prepare(module: nn.Module, args) -> nn.Module:
    module = module.to(args.device)
    return module.to(memory_format=torch.channels_last) if args.channels_last else module


def bare_step(args) -> Step:
    model = prepare(timm.create_model(args.backbone, pretrained=False, num_classes=CLASSES["dish"]), args)
    images, targets = make_batch(["dish"], args.batch, args.size, args.device)
    images = prepare(images, args)
    return optimizer_step(lambda: F.cross_entropy(model(images), targets["dish"]), model,
                          [{"params": model.parameters(), "weight_decay": WEIGHT_DECAY}], args)


def multitask_step(tasks: list[str], args, decoder: str | None = None, diagnostics: str | None = None) -> Step:
    """``diagnostics``: None, or where each step diagnoses the task gradients (see ``diagnoser``)."""
    objective, images, targets = multitask_parts(tasks, args, decoder)
    diagnose = diagnoser(objective, tasks, diagnostics == "shared", args.device) if diagnostics else None

    def loss() -> Tensor:
        out = objective(images, targets, tasks)
        if diagnose:
            diagnose(out)
        return out.total
    return optimizer_step(loss, objective, param_groups(objective, args.backbone,
                                                        OptimConfig(weight_decay=WEIGHT_DECAY)), args)


def multitask_parts(tasks: list[str], args, decoder: str | None = None) -> tuple[Objective, Tensor, dict]:
    """The uniform-weighted Objective over ``tasks`` and its random batch (images, targets)."""
    specs = [TaskSpec(t, KINDS.get(t, "multiclass"), tuple(map(str, range(CLASSES[t]))),
                      get_kind(KINDS.get(t, "multiclass")).check_options(t, {})) for t in tasks]
    model = multitask_model(args.backbone, specs, decoder)
    objective = prepare(Objective(model, build_weighting("uniform", tasks, {})), args)
    images, targets = make_batch(tasks, args.batch, args.size, args.device)
    return objective, prepare(images, args), targets


def diagnoser(objective: Objective, tasks: list[str], shared: bool,
              device: torch.device) -> Callable[[StepOutput], None]:
    """What a diagnosed step adds before its backward (engine/diagnostics.py): the task gradients on the
    representation (with ``shared`` also on the backbone's parameters), their Gram matrix, norms and cosines."""
    params = [p for p in objective.model.backbone.parameters() if p.requires_grad]
    diagnostics = GradDiagnostics(tasks, 1, shared, DistInfo(0, 1, 0, device))

    def diagnose(out: StepOutput) -> None:
        window = diagnostics.window(params)
        window.add(list(range(len(tasks))), [out.losses[t] for t in tasks], out.representation, 1.0)
        diagnostics.record(window)
    return diagnose


def diagnosis_seconds(args, shared: bool) -> float:
    """Median time of the diagnosis alone, repeated on one forward's graph of the multi-task row."""
    objective, images, targets = multitask_parts(HEADS, args)
    with autocast(args.device, args.amp):
        out = objective(images, targets, HEADS)
    diagnose = diagnoser(objective, HEADS, shared, args.device)
    clock = CLOCKS[args.clock]
    times = [timed(lambda: diagnose(out), args.device, clock) for _ in range(args.warmup + args.steps)]
    return statistics.median(times[args.warmup:])


def multitask_model(backbone: str, specs: list[TaskSpec], decoder: str | None) -> MultiTaskModel:
    """build_model's wiring: the backbone dilated if the decoder asks, one encoder pass for all."""
    maps = decoder is not None or any(get_kind(s.kind).multiscale for s in specs)
    encoder = Backbone(backbone, multiscale=maps, output_stride=encoder_output_stride(decoder, {})
                       if decoder else None)
    seg = build_decoder(decoder, encoder.feature_channels, encoder.feature_reductions,
                        CLASSES["segmentation"]) if decoder else None
    return MultiTaskModel(encoder, specs, decoder=seg)


HEADS = ["dish", "category", "cuisine", "ingredients"]
MULTITASK = "multi-task (4 heads)"
DIAGNOSED = {"representation": MULTITASK + " + gradient diagnostics", "shared": MULTITASK + " + diagnostics on "
             "the backbone's parameters"}


def rows(decoders: list[str], instances: bool = False,
         diagnostics: bool = False) -> dict[str, Callable[[argparse.Namespace], Step]]:
    out: dict[str, Callable[[argparse.Namespace], Step]] = {
        "bare timm + linear": bare_step,
        MULTITASK: lambda args: multitask_step(HEADS, args),
    }
    if diagnostics:
        for where, label in DIAGNOSED.items():
            out[label] = lambda args, where=where: multitask_step(HEADS, args, diagnostics=where)
    for name in decoders:
        label = "multi-task + segmentation" + (f" ({name})" if len(decoders) > 1 else "")
        out[label] = lambda args, name=name: multitask_step([*HEADS, "segmentation"], args, name)
    if instances:
        out["multi-task + instances (Mask R-CNN)"] = lambda args: multitask_step([*HEADS, "instances"], args)
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# wall: seconds per step; process: CPU seconds of this process (all its threads), which other
# jobs on a shared machine do not inflate (CPU only: a GPU's work is not this process's CPU time)
CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


def timed(step: Step, device: torch.device, clock: Callable[[], float]) -> float:
    sync(device)
    start = clock()
    step()
    sync(device)
    return clock() - start


def peak_memory_mib(make: Callable[[argparse.Namespace], Step], args) -> float:
    """Peak CUDA memory of one row alone (weights, optimizer state, activations), MiB."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(args.device)
    step = make(args)
    for _ in range(2):  # AdamW state exists from the first step on
        step()
    sync(args.device)
    peak = torch.cuda.max_memory_allocated(args.device) / 2**20
    del step
    return peak


def median_times(args) -> dict[str, float]:
    torch.manual_seed(0)
    steps = {name: make(args) for name, make in rows(args.decoder, args.instances, args.diagnostics > 0).items()}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(args.warmup + args.steps):
        for name, step in steps.items():
            seconds = timed(step, args.device, CLOCKS[args.clock])
            if i >= args.warmup:
                times[name].append(seconds)
    return {name: statistics.median(t) for name, t in times.items()}


def table(times: dict[str, float], memory: dict[str, float], args) -> str:
    bare = times["bare timm + linear"]
    cuda = args.device.type == "cuda"
    where = torch.cuda.get_device_name(args.device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    lines = [f"{args.backbone}, batch {args.batch}, {args.size} px, amp {args.amp}, channels_last "
             f"{args.channels_last}, {where}, median of {args.steps} steps after {args.warmup} warm-up, "
             f"torch {torch.__version__}", "",
             f"| row | {'CPU s' if args.clock == 'process' else 's'} / step | × bare |"
             + (" images/s | peak MiB |" if cuda else ""),
             "| --- | ---: | ---: |" + (" ---: | ---: |" if cuda else "")]
    for name, seconds in times.items():
        extra = f" {args.batch / seconds:.0f} | {memory[name]:.0f} |" if cuda else ""
        lines.append(f"| {name} | {seconds:.4f} | {seconds / bare:.3f} |{extra}")
    return "\n".join(lines) + "\n"


def diagnostics_overhead(times: dict[str, float], args) -> str:
    """Per space: the diagnosed row against the multi-task row, and the diagnosis timed alone, per
    diagnosed step and per step at ``train.grad_diagnostics_every=args.diagnostics``."""
    lines, step = [], times[MULTITASK]
    for where, label in DIAGNOSED.items():
        alone = diagnosis_seconds(args, where == "shared")
        lines.append(f"{label}: row {100 * (times[label] / step - 1):+.1f} %; the diagnosis alone {1000 * alone:.2f} "
                     f"{'CPU ' if args.clock == 'process' else ''}ms = {100 * alone / step:.2f} % of a step per "
                     f"diagnosed step, {100 * alone / step / args.diagnostics:.3f} % per step at "
                     f"train.grad_diagnostics_every={args.diagnostics}")
    return "\n".join(lines) + "\n"


def record(times: dict[str, float], memory: dict[str, float], args) -> dict:
    """The table's figures as JSON (``--json``), for benchmarks/gpu_check.py's summary."""
    cuda = args.device.type == "cuda"
    bare = times["bare timm + linear"]
    return {"backbone": args.backbone, "batch": args.batch, "size": args.size, "amp": args.amp,
            "channels_last": args.channels_last, "device": torch.cuda.get_device_name(args.device) if cuda else "cpu",
            "torch": torch.__version__, "steps": args.steps, "warmup": args.warmup, "clock": args.clock,
            "rows": [{"row": name, "s_per_step": seconds, "x_bare": seconds / bare,
                      "images_per_s": args.batch / seconds, "peak_mib": memory.get(name)}
                     for name, seconds in times.items()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--decoder", default="unet", type=lambda text: text.split(","),
                        help="segmentation decoder(s), comma-separated (docs/segmentation.md): unet, fpn, fcn, ...")
    parser.add_argument("--instances", action="store_true",
                        help="also a row with a Mask R-CNN instances task (docs/instances.md)")
    parser.add_argument("--diagnostics", type=int, default=0, metavar="EVERY",
                        help="also rows with the gradient diagnostics on every step, and their overhead at "
                             "train.grad_diagnostics_every=EVERY (engine/diagnostics.py)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="process: CPU seconds of this process per step, for a CPU shared with other jobs")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    try:
        args.decoder = [decoder_name(name) for name in args.decoder]
    except UnknownNameError as exc:
        parser.error(str(exc))
    args.device = torch.device(args.device)
    if args.clock == "process" and args.device.type != "cpu":
        parser.error("--clock process measures CPU time; use it with --device cpu")
    torch.set_num_threads(args.threads)
    cuda = args.device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    made = rows(args.decoder, args.instances, args.diagnostics > 0)
    memory = {name: peak_memory_mib(make, args) for name, make in made.items()} if cuda else {}
    times = median_times(args)
    print(table(times, memory, args))
    if args.diagnostics > 0:
        print(diagnostics_overhead(times, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record(times, memory, args), f, indent=2)


if __name__ == "__main__":
    main()
