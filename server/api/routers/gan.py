"""GANs: generate and score, interpolate, the training game per snapshot, and the mode report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from server.api.deps import GanDep
from server.api.openapi import error_responses
from server.api.schemas.gan import (
    GeneratedOut,
    GenerateIn,
    InterpolatedOut,
    InterpolateIn,
    ModesOut,
    TrainingOut,
)

router = APIRouter(prefix="/api/v1/gan", tags=["gan"], responses=error_responses(400, 404, 409, 422, 507))


@router.post("/{gan_id}/generate", response_model=GeneratedOut)
async def generate(gan_id: str, body: GenerateIn, svc: GanDep) -> dict[str, Any]:
    """Images from a seed (or explicit latents): a PNG grid, each image's .npy and D's score for each."""
    return await run_in_threadpool(svc.generate, gan_id, body.seed, body.n, body.latent)


@router.post("/{gan_id}/interpolate", response_model=InterpolatedOut)
async def interpolate(gan_id: str, body: InterpolateIn, svc: GanDep) -> dict[str, Any]:
    """A strip of images along the latent line between two seeds, with D's scores."""
    return await run_in_threadpool(svc.interpolate, gan_id, body.seed_a, body.seed_b, body.steps)


@router.get("/{gan_id}/training", response_model=TrainingOut)
async def training(gan_id: str, svc: GanDep) -> dict[str, Any]:
    """Per snapshot: G and D losses, D's mean score on real and generated digits, a sample grid."""
    return await run_in_threadpool(svc.training, gan_id)


@router.get("/{gan_id}/modes", response_model=ModesOut)
async def modes(
    gan_id: str,
    svc: GanDep,
    n: Annotated[
        int, Query(ge=10, description="generated images to classify (at most CONVLENS_GAN_MAX_MODE_SAMPLES)")
    ] = 1000,
    seed: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """digits_cnn classifies n generated images: class histogram, mean confidence, mode-collapse warning."""
    return await run_in_threadpool(svc.modes, gan_id, n, seed)
