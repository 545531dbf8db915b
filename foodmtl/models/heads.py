"""Task heads on the pooled representation."""
from __future__ import annotations

from torch import Tensor, nn


class LinearHead(nn.Module):
    """Dropout + linear layer: logits for a multiclass or multi-label task."""

    def __init__(self, in_features: int, num_outputs: int, drop_rate: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_features, num_outputs)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.fc(self.drop(pooled))
