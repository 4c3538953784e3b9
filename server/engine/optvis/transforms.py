"""Random transforms applied to the image before each forward (Lucid's transformation robustness):
jitter, scale and rotation, drawn from an explicit generator so that runs are reproducible.

All three are one affine grid-sample at the model's resolution; sampling reflects at the border,
which is what Lucid's padding before the transforms provides, without the larger intermediate image."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TransformConfig:
    jitter: int = 0  # largest shift in pixels, each axis
    scales: tuple[float, ...] = (1.0,)  # one is drawn per step
    degrees: float = 0.0  # rotation drawn uniformly from [-degrees, degrees]

    @property
    def identity(self) -> bool:
        return self.jitter == 0 and set(self.scales) == {1.0} and self.degrees == 0


def random_affine(img: torch.Tensor, cfg: TransformConfig, gen: torch.Generator) -> torch.Tensor:
    """One grid-sample doing jitter + scale + rotation, reflecting at the border; same size out."""
    if cfg.identity:
        return img
    _, _, ph, pw = img.shape
    draws = torch.rand(4, generator=gen)
    scale = cfg.scales[int(draws[0] * len(cfg.scales)) % len(cfg.scales)]
    angle = math.radians((float(draws[1]) * 2 - 1) * cfg.degrees)
    dx = (float(draws[2]) * 2 - 1) * cfg.jitter * 2 / pw
    dy = (float(draws[3]) * 2 - 1) * cfg.jitter * 2 / ph
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[[cos, -sin, dx], [sin, cos, dy]]], dtype=img.dtype, device=img.device)
    theta = theta.expand(img.shape[0], 2, 3)  # a batch shares one draw
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def gaussian_kernel1d(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) images with reflective borders."""
    k = gaussian_kernel1d(sigma).to(img)
    c = img.shape[1]
    r = (k.numel() - 1) // 2
    r_h, r_w = min(r, img.shape[2] - 1), min(r, img.shape[3] - 1)
    if r_h < r or r_w < r:  # reflect padding needs pad < size: trim the kernel to the image
        r = min(r_h, r_w)
        k = k[(k.numel() - 1) // 2 - r : (k.numel() - 1) // 2 + r + 1]
        k = k / k.sum()
    if r == 0:
        return img
    x = F.pad(img, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
