"""DeepVis: activation-maximisation jobs and the top-9 dataset images of a filter; poll, stream and
cancel them under /api/v1/jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from server.api.deps import DeepVisDep, JobsDep, TopImagesDep, start_job
from server.api.openapi import error_responses
from server.api.schemas.optvis import DeepVisJobOut, DeepVisRequest, TopImagesJobOut, TopImagesRequest

router = APIRouter(
    prefix="/api/v1/models", tags=["deepvis"], responses=error_responses(400, 404, 409, 422, 507)
)

Untrained = Annotated[bool, Query(description="random weights (explicit opt-in)")]


@router.post("/{model_id}/deepvis", response_model=DeepVisJobOut, status_code=202)
async def start_deepvis(
    model_id: str, body: DeepVisRequest, deepvis: DeepVisDep, jobs: JobsDep, untrained: Untrained = False
) -> DeepVisJobOut:
    """Validate the target and every knob (422 on nonsense), then start a job or return the cached one."""
    target = body.target.model_dump()
    plan = await run_in_threadpool(deepvis.plan, model_id, untrained, target, body.preset, body.knobs())
    return await start_job(jobs, plan, DeepVisJobOut)


@router.post("/{model_id}/top-images", response_model=TopImagesJobOut, status_code=202)
async def start_top_images(
    model_id: str,
    body: TopImagesRequest,
    top_images: TopImagesDep,
    jobs: JobsDep,
    untrained: Untrained = False,
) -> TopImagesJobOut:
    """Top-k dataset images of a filter, each with its deconvolution crop, as a job (cached per dataset content)."""
    plan = await run_in_threadpool(top_images.plan, model_id, untrained, body.model_dump())
    return await start_job(jobs, plan, TopImagesJobOut)
