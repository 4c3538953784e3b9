"""Weights: pull a zoo model's official weights as a job (CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true); poll the job."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from server.api.deps import JobsDep, WeightPullsDep, start_job
from server.api.openapi import error_responses
from server.api.schemas.jobs import WeightPullStarted

router = APIRouter(prefix="/api/v1/models", tags=["weights"], responses=error_responses(403, 404, 409, 422))


@router.post(
    "/{model_id}/weights/pull", response_model=WeightPullStarted, status_code=status.HTTP_202_ACCEPTED
)
async def pull_weights(model_id: str, pulls: WeightPullsDep, jobs: JobsDep) -> WeightPullStarted:
    """Download, SHA-256 check and register the official weights (as `convlens weights pull`): 403 when
    downloads are off, 422 for a model without official weights, 409 when its weights are here already."""
    plan = await run_in_threadpool(pulls.plan, model_id)
    return await start_job(jobs, plan, WeightPullStarted)
