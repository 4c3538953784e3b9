"""How the optimised image is represented: plain pixels (DeepVis) or a scaled Fourier spectrum with
decorrelated colour (Lucid). Every parametrisation maps its parameters to a (1, C, H, W) image in [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Lucid's square root of the ImageNet colour correlation matrix (from its SVD), normalised below.
COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
_MAX_NORM = float(np.max(np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0)))
COLOR_CORRELATION_NORMALIZED = torch.from_numpy(COLOR_CORRELATION_SVD_SQRT / _MAX_NORM)


@dataclass
class ImageParam:
    """Trainable tensors plus the function that turns them into an image."""

    tensors: list[torch.Tensor]
    kind: str
    neutral: torch.Tensor  # (1, C, 1, 1): the grey a pixel decays towards

    def image(self) -> torch.Tensor:
        raise NotImplementedError

    @property
    def pixels(self) -> torch.Tensor | None:
        """The raw pixel tensor when the image *is* its parameter (pixel-space regularisers act on it)."""
        return None


class PixelParam(ImageParam):
    """The image itself, kept in [0, 1] by clamping after every step (Yosinski et al. 2015)."""

    def image(self) -> torch.Tensor:
        return self.tensors[0]

    @property
    def pixels(self) -> torch.Tensor:
        return self.tensors[0]


def pixel_image(
    shape: tuple[int, int, int], neutral: tuple[float, ...], sd: float, gen: torch.Generator, batch: int = 1
) -> PixelParam:
    """``batch`` images of ``shape`` as one (batch, C, H, W) tensor: grey plus ``sd`` noise."""
    c, h, w = shape
    base = torch.tensor(neutral, dtype=torch.float32).reshape(1, c, 1, 1)
    x = (base + sd * torch.randn(batch, c, h, w, generator=gen)).clamp(0, 1).requires_grad_(True)
    return PixelParam([x], "pixel", base)


def rfft2d_freqs(h: int, w: int) -> torch.Tensor:
    """Spatial frequency magnitude of each rfft2 coefficient of an h x w image."""
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


class FFTParam(ImageParam):
    """A spectrum scaled by 1/f^decay (natural-image statistics), optionally colour-decorrelated, then a sigmoid."""

    def __init__(self, tensors, kind, neutral, scale, size, decorrelate):
        super().__init__(tensors, kind, neutral)
        self.scale = scale
        self.size = size
        self.decorrelate = decorrelate

    def image(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.tensors[0]) * self.scale
        h, w = self.size
        img = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho") / 4.0
        if img.dim() == 3:  # one image: its spectrum has no batch axis
            img = img[None]
        if self.decorrelate:
            img = torch.einsum("nchw,dc->ndhw", img, COLOR_CORRELATION_NORMALIZED)
        return torch.sigmoid(img)


def fft_image(
    shape: tuple[int, int, int],
    sd: float,
    decay_power: float,
    decorrelate: bool,
    gen: torch.Generator,
    batch: int = 1,
) -> FFTParam:
    """``batch`` spectra (one without a batch axis) whose images have ``shape``."""
    c, h, w = shape
    freqs = rfft2d_freqs(h, w)
    # No sqrt(h*w) factor: the inverse below is orthonormal (norm="ortho"). Lucid multiplies by sqrt(h*w)
    # only because TF's irfft2d divides by h*w; Lucent, also with an orthonormal inverse, has no factor.
    # Both give the same image; with the factor *and* "ortho" the image was sqrt(h*w) times too strong.
    scale = (1.0 / torch.clamp(freqs, min=1.0 / max(w, h)) ** decay_power)[None, :, :]
    lead = (c,) if batch == 1 else (batch, c)
    spectrum = (sd * torch.randn(*lead, h, w // 2 + 1, 2, generator=gen)).requires_grad_(True)
    neutral = torch.full((1, c, 1, 1), 0.5)
    return FFTParam([spectrum], "fft", neutral, scale, (h, w), decorrelate and c == 3)
