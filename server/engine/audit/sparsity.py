"""Sparsity of a layer's response: the share of activations at the floor and Hoyer's sparsity.

The lecture lists sparsity among what a visualisation should show. Two measures, per filter and per
layer, from exact sums over every position of every image (so they stream, see :mod:`.stats`):

- ``zero_share``: the share of activations at the activation's floor - ``<= 0`` after ReLU and ReLU6
  (whose floor is 0), exactly ``0`` for any other response;
- ``hoyer``: Hoyer's (2004) sparsity ``(sqrt(n) - L1/L2) / (sqrt(n) - 1)`` of the activations as one
  vector: 0 when every activation has the same magnitude, 1 when a single one is non-zero. An
  all-zero vector (a dead filter) counts as 1, the limit of ever fewer non-zero activations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def hoyer(l1: np.ndarray | float, l2_squared: np.ndarray | float, n: int) -> np.ndarray:
    """Hoyer's sparsity of vectors of ``n`` entries from their L1 norm and squared L2 norm."""
    l1 = np.asarray(l1, dtype=np.float64)
    l2 = np.sqrt(np.asarray(l2_squared, dtype=np.float64))
    if n < 2:
        return np.zeros_like(l1)
    root = np.sqrt(float(n))
    ratio = np.divide(l1, l2, out=np.zeros_like(l1), where=l2 > 0)
    value = (root - ratio) / (root - 1.0)
    return np.clip(np.where(l2 > 0, value, 1.0), 0.0, 1.0)


def hoyer_of(values: np.ndarray) -> float:
    """Hoyer's sparsity of one array taken as a vector (the reference the streamed sums must match)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    return float(hoyer(np.abs(v).sum(), (v**2).sum(), v.size))


@dataclass
class Sparsity:
    """Sparsity of one layer's response: per filter and for the whole layer."""

    zero_share: np.ndarray  # (C,) share of each filter's activations at the floor
    hoyer: np.ndarray  # (C,) Hoyer sparsity of each filter's activations
    layer_zero_share: float
    layer_hoyer: float
    floor: str  # "<= 0" or "== 0": what counted as at the floor

    @classmethod
    def from_sums(
        cls, at_floor: np.ndarray, abs_sum: np.ndarray, sq_sum: np.ndarray, count: int, floor: str
    ) -> Sparsity:
        """From per-filter counts at the floor, sums of |x| and of x^2 over ``count`` activations each."""
        at_floor = np.asarray(at_floor, dtype=np.float64)
        channels = at_floor.shape[0]
        n = max(count, 1)
        return cls(
            zero_share=at_floor / n,
            hoyer=hoyer(abs_sum, sq_sum, count),
            layer_zero_share=float(at_floor.sum() / (n * max(channels, 1))),
            layer_hoyer=float(hoyer(np.sum(abs_sum), np.sum(sq_sum), count * channels)),
            floor=floor,
        )

    def to_dict(self, digits: int = 5) -> dict[str, Any]:
        return {
            "floor": self.floor,
            "zero_share": round(self.layer_zero_share, digits),
            "hoyer": round(self.layer_hoyer, digits),
            "filters": {
                "zero_share": [round(float(v), digits) for v in self.zero_share],
                "hoyer": [round(float(v), digits) for v in self.hoyer],
            },
        }


def depth_curve(layers: list[tuple[str, Sparsity]]) -> dict[str, Any]:
    """The per-layer measures in execution order: the curve over depth."""
    return {
        "layers": [name for name, _ in layers],
        "zero_share": [round(s.layer_zero_share, 5) for _, s in layers],
        "hoyer": [round(s.layer_hoyer, 5) for _, s in layers],
    }
