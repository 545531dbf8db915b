"""A resumable, rank-sharded sampler that also hands each sample its augmentation seed.

The order of an epoch is a pure function of (seed, epoch), and so is every
sample's augmentation (its seed travels with its index), whatever the number
of workers. A run resumed at sample ``k`` of an epoch therefore sees exactly
the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import Sampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 * 104_729 + index) % (2**31 - 1)


class ResumableSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, augmentation_seed)``; pads like DistributedSampler so ranks stay in step."""

    def __init__(self, length: int, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1,
                 weights: list[float] | None = None):
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

    def order(self) -> list[tuple[int, int]]:
        """This rank's ``(index, position in the epoch)`` pairs."""
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.length, replacement=True, generator=g).tolist()
        elif self.shuffle:
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        order += order[: self.per_rank * self.world - self.length]  # pad so every rank has per_rank
        return [(index, pos) for pos, index in enumerate(order)][self.rank :: self.world]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # Seeded by position, not index: a sample drawn twice (weighted draws) is augmented twice.
        for index, position in self.order()[self.skip :]:
            yield index, sample_seed(self.seed, self.epoch, position)

    def __len__(self) -> int:
        return self.per_rank - self.skip
