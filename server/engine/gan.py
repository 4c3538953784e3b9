"""A GAN's two halves at work: latents from seeds, generating and scoring a batch in one pass each,
interpolating between latents, image grids, and the mode report (which classes a classifier sees)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from server.engine.imaging import grid_shape
from server.errors import InvalidInputError


def seeded_latents(seed: int, n: int, latent_dim: int) -> torch.Tensor:
    """``n`` standard-normal latents (n, latent_dim) from ``seed``; image i of a seed never depends on n."""
    g = torch.Generator().manual_seed(int(seed))
    # row by row: one randn(n, d) call draws differently for different n (vectorised sampling)
    return torch.stack([torch.randn(latent_dim, generator=g) for _ in range(n)])


def check_latents(latent: list[list[float]] | np.ndarray, latent_dim: int, max_n: int) -> torch.Tensor:
    """Explicit latents as a (n, latent_dim) tensor, or InvalidInputError saying what is wrong."""
    try:
        z = np.asarray(latent, dtype=np.float32)
    except (ValueError, TypeError):
        raise InvalidInputError(f"latent must be a list of vectors of {latent_dim} numbers.") from None
    if z.ndim == 1:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise InvalidInputError(
            f"latent must have {latent_dim} numbers per vector; got shape {list(z.shape)}."
        )
    if not 1 <= z.shape[0] <= max_n:
        raise InvalidInputError(f"latent must hold between 1 and {max_n} vectors; got {z.shape[0]}.")
    if not np.isfinite(z).all():
        raise InvalidInputError("latent must contain only finite numbers.")
    return torch.from_numpy(z)


def interpolate_latents(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` latents on the straight line from ``a`` to ``b`` (both ends included)."""
    if steps < 2:
        raise InvalidInputError("steps must be at least 2 (both ends of the line).")
    t = torch.linspace(0.0, 1.0, steps)[:, None]
    return (1 - t) * a[None] + t * b[None]


@dataclass(frozen=True)
class Generated:
    """Images in [0, 1] (n, c, h, w) and the discriminator's P(real) for each (n,)."""

    images: np.ndarray
    scores: np.ndarray


def generate_and_score(
    generator: nn.Module, discriminator: nn.Module, z: torch.Tensor, device: torch.device | None = None
) -> Generated:
    """One generator forward and one discriminator forward of the same batch.

    The generator outputs tanh images in [-1, 1], which is what the discriminator reads; the images
    returned are mapped to [0, 1]. The discriminator's logits are ``[fake, real]``: the score is the
    softmax of "real".
    """
    device = device or next(generator.parameters()).device
    z = z.to(device)
    if z.dim() == 2:
        z = z[:, :, None, None]
    with torch.inference_mode():
        fake = generator(z)
        logits = discriminator(fake)
        scores = torch.softmax(logits.float(), dim=1)[:, 1]
    images = ((fake.float() + 1) / 2).clamp(0, 1).cpu().numpy()
    return Generated(images, scores.cpu().numpy())


def image_grid(images: np.ndarray, cols: int | None = None, pad: int = 1) -> np.ndarray:
    """(n, 1|3, h, w) in [0, 1] -> one uint8 picture of the images in rows (a white frame between)."""
    n, c, h, w = images.shape
    rows, cols = grid_shape(n) if cols is None else (-(-n // cols), cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        out[y : y + h, x : x + w] = (images[i].transpose(1, 2, 0) * 255).round().astype(np.uint8)
    return out[..., 0] if c == 1 else out


@dataclass(frozen=True)
class ModeReport:
    histogram: list[int]
    mean_confidence: float
    confidence_per_class: list[float | None]
    missing: list[int]
    warning: str | None

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def mode_report(
    probs: np.ndarray, labels: tuple[str, ...] | list[str], min_share: float = 0.01
) -> ModeReport:
    """A classifier's softmax over generated images (n, classes) -> which classes the GAN produces.

    A class is *missing* when it is the top-1 class of fewer than ``min_share`` of the images; any
    missing class is a sign of mode collapse, and the warning says which.
    """
    n, k = probs.shape
    top = probs.argmax(1)
    conf = probs.max(1)
    hist = np.bincount(top, minlength=k)
    per_class = [float(conf[top == i].mean()) if hist[i] else None for i in range(k)]
    missing = [i for i in range(k) if hist[i] < max(1, min_share * n)]
    warning = None
    if missing:
        names = ", ".join(str(labels[i]) if i < len(labels) else str(i) for i in missing)
        warning = (
            f"Mode collapse: {len(missing)} of {k} classes are (nearly) never generated ({names}; "
            f"under {min_share:.0%} of {n} samples each)."
        )
    return ModeReport(hist.tolist(), float(conf.mean()), per_class, missing, warning)
