"""What-if zeroing: accuracy before and after silencing chosen filters, on a private copy."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from server.engine.audit.response import ResponsePoint, at_response_points, output_channels, response_points
from server.engine.audit.results import Batch
from server.errors import InvalidInputError


@dataclass(frozen=True)
class WhatIf:
    zeroed: dict[str, list[int]]
    accuracy_before: float
    accuracy_after: float
    images: int

    @property
    def change_points(self) -> float:
        """Accuracy change in percentage points (after - before)."""
        return 100.0 * (self.accuracy_after - self.accuracy_before)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["change_points"] = self.change_points
        d["zeroed_filters"] = sum(len(v) for v in self.zeroed.values())
        return d


def accuracy_on(model: nn.Module, batches: Iterable[Batch]) -> tuple[float, int]:
    """Top-1 accuracy and image count of ``model`` on labelled ``batches``."""
    correct = total = 0
    with torch.inference_mode():
        for x, y in batches:
            if y is None:
                raise InvalidInputError("The what-if needs a labelled dataset; this one has no labels.")
            pred = model(x).argmax(1).cpu()
            target = torch.as_tensor(np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)).reshape(-1)
            correct += int((pred == target).sum())
            total += int(target.numel())
    if total == 0:
        raise InvalidInputError("The what-if dataset is empty.")
    return correct / total, total


def what_if_zeroing(
    model: nn.Module,
    batches: Callable[[], Iterable[Batch]],
    zero: dict[str, list[int]],
    example: torch.Tensor,
) -> WhatIf:
    """Accuracy before and after zeroing the responses of ``zero`` ({layer: filters}) on a private copy.

    ``batches`` is called twice (before, after). The shared ``model`` is never modified.
    """
    points = response_points(model, example[:1])
    unknown = [layer for layer in zero if layer not in points]
    if unknown:
        raise InvalidInputError(
            f"Cannot zero filters of {', '.join(unknown)}: not conv/linear layers of the model."
        )
    before, n = accuracy_on(model, batches())
    clone = copy.deepcopy(model)
    masks: dict[str, torch.Tensor] = {}
    for layer, filters in zero.items():
        module = dict(clone.named_modules())[layer]
        channels = output_channels(module)
        bad = [f for f in filters if not 0 <= int(f) < channels]
        if bad:
            raise InvalidInputError(f"Layer '{layer}' has {channels} filters; cannot zero {bad}.")
        mask = torch.ones(channels)
        mask[list(filters)] = 0.0
        masks[layer] = mask

    def apply(point: ResponsePoint, out: torch.Tensor) -> torch.Tensor:
        mask = masks[point.layer].to(out.device, out.dtype)
        return out * mask.reshape(1, -1, *([1] * (out.dim() - 2)))

    selected = [p for p in points.values() if p.layer in masks]
    with at_response_points(clone, selected, apply):
        after, _ = accuracy_on(clone, batches())
    return WhatIf({k: sorted(int(i) for i in v) for k, v in zero.items()}, before, after, n)
