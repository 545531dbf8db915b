"""torchrun/DDP plumbing: process group from the environment, rank helpers, sharding."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


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
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("train.device=cuda but no CUDA device is visible")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device_preference: str = "auto") -> DistInfo:
    """Join the process group torchrun set up (nccl on GPU, gloo on CPU), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
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
