"""torchrun/DDP plumbing: process group from the environment, rank helpers, sharding."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from foodmtl.errors import ConfigError

log = logging.getLogger(__name__)
BACKEND_ENV = "FOODMTL_DIST_BACKEND"  # gloo | nccl, instead of nccl on GPU and gloo on CPU


@dataclass
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(preference: str, local_rank: int) -> torch.device:
    """One GPU per local rank; with more ranks than GPUs they take turns (cuda:0, cuda:1, cuda:0, ...),
    which only gloo accepts (see dist_backend)."""
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("train.device=cuda but torch sees no CUDA device (no GPU, a CPU-only torch build, "
                              "or CUDA_VISIBLE_DEVICES hiding them); use train.device=auto or cpu")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def use_cudnn_benchmark(setting: bool | None, device: torch.device) -> bool:
    """``train.cudnn_benchmark``: None means on for CUDA. cuDNN then times its convolution algorithms
    on the first batch of each input shape and keeps the fastest (worth it for fixed-size inputs,
    as here); the choice can differ between processes, so set it false for bit-identical reruns."""
    return device.type == "cuda" if setting is None else setting


def dist_backend(device: torch.device) -> str:
    """nccl on GPU, gloo on CPU, unless FOODMTL_DIST_BACKEND says otherwise.

    gloo also all-reduces CUDA tensors (slower, through host memory), and unlike nccl it lets
    several ranks share one GPU: the way to run the distributed code path with CUDA tensors on
    a one-GPU machine. nccl with more local ranks than GPUs is refused here, before nccl's own
    error (a hang or "Duplicate GPU detected") at the first collective.
    """
    forced = os.environ.get(BACKEND_ENV, "").strip().lower()
    if forced not in ("", "gloo", "nccl"):
        raise ConfigError(f"{BACKEND_ENV}={forced}: expected gloo or nccl")
    backend = forced or ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and device.type != "cuda":
        raise ConfigError(f"{BACKEND_ENV}=nccl needs a GPU per rank; this rank runs on the CPU")
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if backend == "nccl" and ranks_here > torch.cuda.device_count():
        raise ConfigError(f"{ranks_here} ranks share {torch.cuda.device_count()} GPU(s) on this machine, which nccl "
                          f"does not allow: start one rank per GPU, or set {BACKEND_ENV}=gloo")
    return backend


def init_distributed(device_preference: str = "auto", cudnn_benchmark: bool | None = None) -> DistInfo:
    """Join the process group torchrun set up (see dist_backend), if any, on the device picked
    here, with cuDNN's autotuner as ``use_cudnn_benchmark`` decides."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    torch.backends.cudnn.benchmark = use_cudnn_benchmark(cudnn_benchmark, device)
    if world > 1 and not dist.is_initialized():
        backend = dist_backend(device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, rank=rank, world_size=world)
        log.info("rank %d of %d: %s backend, device %s", rank, world, backend, device)
    return DistInfo(rank, world, local_rank, device)


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(value: Any, info: DistInfo) -> Any:
    """Rank 0's ``value`` on every rank."""
    if info.world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_over_ranks(value: int, info: DistInfo) -> int:
    if info.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return int(t.item())


def max_over_ranks(values: list[float], info: DistInfo) -> list[float]:
    """Element-wise maximum over ranks (used as a logical OR of flags)."""
    if info.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float32, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def mean_where_present(values: dict[str, float], names: list[str], info: DistInfo) -> dict[str, float]:
    """Per name, the mean over the ranks that have a value for it; names no rank has are left out."""
    if info.world == 1:
        return values
    t = torch.zeros(2, len(names), dtype=torch.float64, device=info.device)
    for i, name in enumerate(names):
        if name in values:
            t[0, i], t[1, i] = values[name], 1.0
    dist.all_reduce(t)
    return {n: float(t[0, i] / t[1, i]) for i, n in enumerate(names) if t[1, i] > 0}


def average_gradients(params: Iterator[torch.nn.Parameter], info: DistInfo) -> None:
    """All-reduce ``.grad`` by mean, for strategies that back-propagate under ``no_sync``.

    A parameter without a gradient on this rank (its task absent here) joins with zeros,
    so every rank reduces the same tensors in the same order.
    """
    if info.world == 1:
        return
    for p in params:
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= info.world


class ShardSampler(Sampler[int]):
    """Evaluation sharding without DistributedSampler's padding: every sample counted once."""

    def __init__(self, length: int, rank: int, world: int):
        self.indices = list(range(rank, length, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank, before evaluating.

    DDP copies rank 0's buffers at the start of each training forward, but that forward (and
    FAMO's second forward outside DDP) then updates each rank's copy with its own batch, so
    after training the ranks' statistics differ. Only rank 0's are saved; evaluating with them
    everywhere makes the reported metrics those of the saved model. (SyncBatchNorm keeps them
    equal anyway; then this changes nothing.)
    """
    if info.world == 1:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)
