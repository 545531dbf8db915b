"""A resumable, rank-sharded sampler that also hands each sample its augmentation seed.

The order of an epoch is a pure function of (seed, epoch), and so is every
sample's augmentation (its seed travels with its index), whatever the number
of workers. A run resumed at sample ``k`` of an epoch therefore sees exactly
the batches an uninterrupted run would have seen, and the state to save is three
integers (``state_dict``), whatever the size of the data set: the order is drawn
again, as tensors (a million indices take a few MB and milliseconds), never stored.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
from torch import Tensor
from torch.utils.data import Sampler

SEED_MODULUS = 2**31 - 1
CHUNK = 4096  # indices turned into Python ints at a time


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 * 104_729 + index) % SEED_MODULUS


class ResumableSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, augmentation_seed)``; pads like DistributedSampler so ranks stay in step."""

    def __init__(self, length: int, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1,
                 weights: list[float] | Tensor | None = None):
        """``weights``: draw each epoch's ``length`` indices with replacement, with these odds."""
        self.length, self.shuffle, self.seed = length, shuffle, seed
        self.weights = torch.as_tensor(weights, dtype=torch.float64) if weights is not None else None
        self.rank, self.world = rank, world
        self.per_rank = math.ceil(length / world)
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Start ``epoch`` after its first ``skip`` samples of this rank (resume)."""
        self.epoch, self.skip = epoch, skip

    def state_dict(self) -> dict[str, int]:
        """Where this rank is: enough to draw the rest of the epoch again."""
        return {"seed": self.seed, "epoch": self.epoch, "skip": self.skip}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = state["seed"]
        self.set_epoch(state["epoch"], state["skip"])

    def positions(self) -> Tensor:
        """This rank's positions in the epoch's order (padded to ``per_rank * world``)."""
        return torch.arange(self.rank, self.per_rank * self.world, self.world)

    def order(self) -> Tensor:
        """The epoch's indices, all ranks; a pure function of (seed, epoch)."""
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.weights is not None:
            return torch.multinomial(self.weights, self.length, replacement=True, generator=g)
        if self.shuffle:
            return torch.randperm(self.length, generator=g)
        return torch.arange(self.length)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        positions = self.positions()[self.skip:]
        indices = self.order()[positions % self.length]  # positions past the end wrap round (padding)
        # Seeded by position, not index: a sample drawn twice (weighted draws) is augmented twice.
        base = sample_seed(self.seed, self.epoch, 0)
        seeds = (positions + base) % SEED_MODULUS
        for index_chunk, seed_chunk in zip(indices.split(CHUNK), seeds.split(CHUNK)):
            yield from zip(index_chunk.tolist(), seed_chunk.tolist())

    def __len__(self) -> int:
        return self.per_rank - self.skip
