"""The DeepVis toolbox's top-9: the dataset images that excite a filter most, and the part of each image
its deconvolution map covers (the crop shown next to it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from server.engine.features import ProgressFn, extract
from server.errors import InvalidInputError


@dataclass(frozen=True)
class StrongImage:
    index: int  # position in the dataset
    value: float  # the filter's strongest activation on this image


def strongest_images(
    model: nn.Module,
    layer: str,
    channel: int,
    batches: Iterable[torch.Tensor],
    k: int = 9,
    *,
    progress: ProgressFn | None = None,
    total: int | None = None,
) -> list[StrongImage]:
    """The ``k`` images whose strongest activation of ``channel`` at ``layer`` is largest, strongest first."""
    if k < 1:
        raise InvalidInputError(f"k must be at least 1, got {k}.")
    peaks = extract(model, layer, batches, "max", progress=progress, total=total).features
    return strongest_per_channel(peaks, [channel], k, layer)[channel]


def strongest_per_channel(
    peaks: np.ndarray, channels: Iterable[int], k: int = 9, layer: str = "the layer"
) -> dict[int, list[StrongImage]]:
    """For each of ``channels``, the ``k`` images (rows of ``peaks``, (N, C): each image's strongest activation
    per channel) with the largest peak, strongest first: one features pass answers every filter of a layer."""
    if k < 1:
        raise InvalidInputError(f"k must be at least 1, got {k}.")
    n = peaks.shape[1]
    out: dict[int, list[StrongImage]] = {}
    for channel in channels:
        if not 0 <= channel < n:
            raise InvalidInputError(
                f"Channel {channel} is out of range for layer '{layer}' with {n} channels (0..{n - 1})."
            )
        values = peaks[:, channel]
        order = np.argsort(-values, kind="stable")[: min(k, len(values))]
        out[channel] = [StrongImage(int(i), float(values[i])) for i in order]
    return out


def support_box(attr_map: np.ndarray, fraction: float = 0.05, pad: int = 1) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), bottom/right exclusive: where |map| (summed over channels) exceeds
    ``fraction`` of its maximum, padded by ``pad`` pixels; the whole image when the map is all zero."""
    m = np.abs(np.asarray(attr_map, dtype=np.float32))
    if m.ndim == 3:
        m = m.sum(axis=0)
    h, w = m.shape
    peak = float(m.max())
    if peak <= 0:
        return 0, 0, h, w
    ys, xs = np.nonzero(m >= fraction * peak)
    top, left = max(0, int(ys.min()) - pad), max(0, int(xs.min()) - pad)
    bottom, right = min(h, int(ys.max()) + 1 + pad), min(w, int(xs.max()) + 1 + pad)
    return top, left, bottom, right
