"""What an epoch of training did: its mean loss and its throughput in images/s (``train/epoch_loss``
and ``train/images_per_s`` in metrics.jsonl and W&B, ``train_loss`` and ``train_images_per_s`` in
summary.csv). After a mid-epoch resume both cover the steps this process ran."""
from __future__ import annotations

import math
import time


class EpochMeter:
    """``world``: ranks that each train the same number of images per step (full batches only),
    so this rank's count times ``world`` is the job's. The clock runs from ``start`` to ``stop``:
    data loading and optimizer steps, not the evaluation."""

    def __init__(self, world: int = 1):
        self.world = world
        self.images = 0
        self.losses: list[float] = []
        self.began = time.perf_counter()
        self.seconds = 0.0

    def add(self, images: int, loss: float) -> None:
        self.images += images
        self.losses.append(loss)

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self.began

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def mean_loss(self) -> float:
        """Mean of the steps' unweighted loss sums (NaN when no step ran, e.g. resumed at the epoch's end)."""
        return sum(self.losses) / len(self.losses) if self.losses else math.nan

    @property
    def images_per_s(self) -> float:
        return self.images * self.world / self.seconds if self.images and self.seconds > 0 else math.nan

    def record(self) -> dict[str, float]:
        """The ``train_<name>`` values of summary.csv."""
        return {"loss": self.mean_loss, "images_per_s": self.images_per_s}
