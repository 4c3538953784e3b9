"""Request and response schemas of the GAN resources."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GenerateIn(BaseModel):
    seed: int = Field(
        0, ge=0, le=2**32 - 1, description="seeds the latents (image i of a seed never depends on n)"
    )
    n: int = Field(16, ge=1, description="how many images (at most CONVLENS_GAN_MAX_IMAGES)")
    latent: list[list[float]] | None = Field(
        None,
        description="explicit latents (one vector of latent_dim numbers per image); overrides seed and n",
    )


class InterpolateIn(BaseModel):
    seed_a: int = Field(0, ge=0, le=2**32 - 1)
    seed_b: int = Field(1, ge=0, le=2**32 - 1)
    steps: int = Field(8, description="images along the line, both ends included (2..CONVLENS_GAN_MAX_STEPS)")


class GeneratedImage(BaseModel):
    index: int
    d_score: float
    npy_url: str


class GanPair(BaseModel):
    gan: str
    generator: str
    discriminator: str
    latent_dim: int


class GeneratedOut(GanPair):
    n: int
    seed: int | None = None
    grid_url: str
    images: list[GeneratedImage]
    mean_d_score: float
    latent: list[list[float]]


class InterpolatedOut(GeneratedOut):
    seed_a: int
    seed_b: int
    steps: int


class Snapshot(BaseModel):
    step: int
    name: str
    g_loss: float
    d_loss: float
    d_real: float
    d_fake: float
    samples_url: str


class TrainingOut(GanPair):
    steps: int
    seed: int
    sample_seeds: list[int]
    train_seconds: float | None
    snapshots: list[Snapshot]


class ModesOut(GanPair):
    classifier: str
    n: int
    seed: int
    labels: list[str]
    histogram: list[int]
    mean_confidence: float
    confidence_per_class: list[float | None]
    missing: list[int]
    warning: str | None
    classes_present: int
    mean_d_score: float
