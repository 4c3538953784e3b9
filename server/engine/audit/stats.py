"""Streaming per-channel statistics of a layer's response over a dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from server.engine.audit.sparsity import Sparsity


class ChannelAccumulator:
    """Streaming per-channel statistics of one layer's response over a dataset.

    Exact over every position: each image's spatially averaged response (for CKA, separability, top
    images and the channel means) and, with ``maximum`` = "exact", each channel's maximum, so that
    "never positive" is exact. For ReLU and ReLU6 responses (never negative) ``maximum`` =
    "from_means" takes the largest image mean instead, which is positive exactly when some position
    is, at no extra cost; "skip" keeps none (layers without a rectifier have no dead check).
    Over a seeded sample of ``stat_positions`` positions per image (every position of maps that
    small): the positive and saturated shares. Over ``positions_per_image`` of those: the covariance
    between channels (and so each channel's variance), accumulated in blocks of ``flush_rows`` rows.
    Sampling keeps the cost of the largest maps to one reduction per response. Exact over every
    position again: the sums behind the sparsity measures (:mod:`.sparsity`), the count of activations
    at the floor (``<= 0`` when ``nonnegative``, else exactly 0) and the sums of |x| and x^2.
    """

    def __init__(
        self,
        channels: int,
        positions_per_image: int,
        saturating: str | None,
        level: float,
        seed: int,
        stat_positions: int = 16,
        maximum: str = "exact",
        flush_rows: int = 1024,
        nonnegative: bool = False,
    ) -> None:
        self.channels = channels
        self.positions_per_image = positions_per_image
        self.stat_positions = max(stat_positions, positions_per_image)
        self.saturating = saturating
        self.level = level
        self.maximum_mode = maximum
        self.flush_rows = flush_rows
        self.generator = torch.Generator().manual_seed(seed)
        self.maximum = torch.full((channels,), -torch.inf, dtype=torch.float64)
        self.positions = 0  # sampled positions behind the shares
        self.positive = torch.zeros(channels, dtype=torch.float64)
        self.saturated = torch.zeros(channels, dtype=torch.float64)
        self.samples = 0  # rows behind the covariance
        self.shift: torch.Tensor | None = None  # subtracted before summing products (numerical stability)
        self.shifted_sum = torch.zeros(channels, dtype=torch.float64)
        self.shifted_products = torch.zeros(channels, channels, dtype=torch.float64)
        self.nonnegative = nonnegative
        self.values = 0  # activations per channel behind the sparsity sums (every position)
        self.at_floor = torch.zeros(channels, dtype=torch.float64)
        self.abs_sum = torch.zeros(channels, dtype=torch.float64)
        self.sq_sum = torch.zeros(channels, dtype=torch.float64)
        self.pooled: list[torch.Tensor] = []
        self._rows: list[torch.Tensor] = []
        self._buffered = 0

    def _positions(self, spatial: int, count: int, device: torch.device) -> torch.Tensor | None:
        if spatial <= count:
            return None
        return torch.randperm(spatial, generator=self.generator)[:count].to(device)

    def update(self, output: torch.Tensor) -> None:
        x = output.detach().float()
        b, c = x.shape[0], self.channels
        # (B, S, C): free for channels_last conv outputs, one copy otherwise
        rows3 = x.permute(0, 2, 3, 1) if x.dim() == 4 else x.reshape(b, c, -1).transpose(1, 2)
        rows3 = rows3.reshape(b, -1, c)
        spatial = rows3.shape[1]
        self.pooled.append(rows3.mean(1).cpu())
        if self.maximum_mode == "exact":
            self.maximum = torch.maximum(self.maximum, rows3.amax((0, 1)).double().cpu())
        elif self.maximum_mode == "from_means":
            self.maximum = torch.maximum(self.maximum, self.pooled[-1].amax(0).double())
        self.values += b * spatial
        floor = rows3 <= 0 if self.nonnegative else rows3 == 0
        self.at_floor += floor.sum((0, 1)).double().cpu()
        self.abs_sum += rows3.abs().sum((0, 1), dtype=torch.float64).cpu()
        self.sq_sum += rows3.square().sum((0, 1), dtype=torch.float64).cpu()
        idx = self._positions(spatial, self.stat_positions, x.device)
        sample = rows3 if idx is None else rows3.index_select(1, idx)
        rows = sample.reshape(-1, c)
        self.positions += rows.shape[0]
        self.positive += (rows > 0).float().sum(0).double().cpu()
        if self.saturating == "unit":
            self.saturated += ((rows >= self.level) | (rows <= 1 - self.level)).float().sum(0).double().cpu()
        elif self.saturating == "symmetric":
            self.saturated += (rows.abs() >= self.level).float().sum(0).double().cpu()
        idx = self._positions(sample.shape[1], self.positions_per_image, x.device)
        corr_rows = (sample if idx is None else sample.index_select(1, idx)).reshape(-1, c)
        self._rows.append(corr_rows.clone() if idx is None else corr_rows)
        self._buffered += corr_rows.shape[0]
        if self._buffered >= self.flush_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        rows = torch.cat(self._rows)
        self._rows, self._buffered = [], 0
        if self.shift is None:
            self.shift = rows.mean(0)
        shifted = rows - self.shift
        self.shifted_products += (shifted.T @ shifted).double().cpu()
        self.shifted_sum += shifted.sum(0).double().cpu()
        self.samples += rows.shape[0]

    def stats(self) -> ChannelStatistics:
        self._flush()
        n = max(self.samples, 1)
        mean_shifted = self.shifted_sum / n
        comoment = self.shifted_products - torch.outer(mean_shifted, mean_shifted) * n
        std = torch.sqrt(torch.clamp(torch.diagonal(comoment) / n, min=0)).numpy()
        pooled = torch.cat(self.pooled).numpy() if self.pooled else np.zeros((0, self.channels), np.float32)
        mean = pooled.astype(np.float64).mean(0) if pooled.shape[0] else np.zeros(self.channels)
        return ChannelStatistics(
            maximum=self.maximum.numpy(),
            active_share=(self.positive / max(self.positions, 1)).numpy(),
            saturated_share=(self.saturated / max(self.positions, 1)).numpy() if self.saturating else None,
            mean=mean,
            std=std,
            rms=np.sqrt(mean**2 + std**2),
            correlation=correlation_from_comoment(comoment.numpy()),
            pooled=pooled,
            sparsity=Sparsity.from_sums(
                self.at_floor.numpy(),
                self.abs_sum.numpy(),
                self.sq_sum.numpy(),
                self.values,
                "<= 0" if self.nonnegative else "== 0",
            ),
        )


def correlation_from_comoment(comoment: np.ndarray) -> np.ndarray:
    """Pearson correlation from a co-moment matrix; rows of constant channels are 0 (diagonal 1)."""
    var = np.diag(comoment).copy()
    scale = np.sqrt(np.clip(var, 0, None))
    ok = scale > 1e-12 * max(float(scale.max(initial=0.0)), 1e-30)
    inv = np.where(ok, 1.0 / np.where(ok, scale, 1.0), 0.0)
    corr = comoment * inv[:, None] * inv[None, :]
    corr = np.clip(corr, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


@dataclass
class ChannelStatistics:
    maximum: np.ndarray  # (C,) largest response over every position
    active_share: np.ndarray  # (C,) share of positions with a positive response
    saturated_share: np.ndarray | None  # (C,) for sigmoid/tanh responses
    mean: np.ndarray
    std: np.ndarray
    rms: np.ndarray  # root mean square response, how much signal a channel sends on
    correlation: np.ndarray  # (C, C) over sampled positions
    pooled: np.ndarray  # (N, C) spatial mean of each image's response
    sparsity: Sparsity | None = None  # zero share and Hoyer sparsity, per filter and for the layer
