"""Projections: start a job (t-SNE, PCA, Kernel PCA, Isomap, Sammon, UMAP), steer a running t-SNE, export.

Frames and the result come from ``GET /api/v1/jobs/{job_id}``; ``DELETE`` there cancels.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from server.api.deps import JobsDep, ProjectionsDep, start_job
from server.api.openapi import error_responses, file_response
from server.api.schemas.projections import (
    ChannelValuesOut,
    LiveIn,
    LiveOut,
    ParamSpecOut,
    PerplexityGuidanceOut,
    PointsOut,
    ProjectionIn,
    ProjectionJobOut,
)
from server.engine.projection import PARAMS
from server.engine.projection.cautions import perplexity_guidance
from server.errors import ConflictError, NotFoundError
from server.jobs import JobManager, JobState
from server.projections import PROJECTION_TASK, ProjectionRequest, projection_csv

router = APIRouter(
    prefix="/api/v1/projections", tags=["projections"], responses=error_responses(400, 404, 409, 422, 507)
)


def _projection_job(jobs: JobManager, job_id: str) -> JobState:
    state = jobs.get(job_id)
    if state.kind != PROJECTION_TASK:
        raise NotFoundError(f"Job '{job_id}' is a {state.kind} job, not a projection.")
    return state


@router.get("/methods", response_model=dict[str, list[ParamSpecOut]])
def methods() -> dict[str, list[dict[str, Any]]]:
    """Every method's parameters with defaults and ranges (the dashboard builds its controls from this)."""
    return {method: [p.to_dict() for p in specs] for method, specs in PARAMS.items()}


@router.get("/perplexity-guidance", response_model=PerplexityGuidanceOut)
def guidance(n: Annotated[int, Query(ge=5, description="number of points")]) -> dict[str, Any]:
    """The t-SNE perplexity range that suits N points, the N / 3 limit, and why."""
    return perplexity_guidance(n)


@router.post("", response_model=ProjectionJobOut, status_code=202)
async def start_projection(body: ProjectionIn, jobs: JobsDep, service: ProjectionsDep) -> ProjectionJobOut:
    """Validate (422 on bad parameters or data), then start a job or return the cached one."""
    plan = await run_in_threadpool(service.plan, ProjectionRequest(**body.model_dump()))
    return await start_job(jobs, plan, ProjectionJobOut)


@router.patch("/{job_id}", response_model=LiveOut)
async def steer_projection(
    job_id: str, body: LiveIn, jobs: JobsDep, service: ProjectionsDep
) -> dict[str, Any]:
    """Change epsilon (and/or perplexity) of a running t-SNE; the next frames use the new values."""

    def work() -> dict[str, Any]:
        state = _projection_job(jobs, job_id)
        if state.done:
            raise ConflictError(f"Job '{job_id}' has already {state.status}; start a new projection.")
        values = service.live_check(state.params, body.model_dump())
        jobs.send_control(job_id, values)
        after = jobs.get(job_id)
        return {"job_id": job_id, "status": after.status, "control": jobs.store.get_control(job_id)}

    return await run_in_threadpool(work)


@router.get("/{job_id}/points", response_model=PointsOut)
async def points(job_id: str, jobs: JobsDep, service: ProjectionsDep) -> dict[str, Any]:
    """Labels, predicted classes and image links of a projection's points (available while it runs)."""
    state = _projection_job(jobs, job_id)
    out = await run_in_threadpool(service.points, state.params)
    ds = state.params["dataset"]
    return {
        **out,
        "thumbnail_url": f"/api/v1/datasets/{ds}/thumbnails/",
        "explore_image_url": f"/api/v1/datasets/{ds}/images/",
    }


@router.get("/{job_id}/activation", response_model=ChannelValuesOut)
async def activation(
    job_id: str, jobs: JobsDep, service: ProjectionsDep, channel: Annotated[int, Query(ge=0)]
) -> dict[str, Any]:
    """The pooled activation of filter ``channel`` of the job's layer for every point (colour by filter)."""
    state = _projection_job(jobs, job_id)
    values = await run_in_threadpool(service.activation, state.params, channel)
    return {"channel": channel, "layer": state.params["layer"], "values": values}


@router.get("/{job_id}/export.csv", response_class=Response, responses=file_response("text/csv"))
def export_csv(job_id: str, jobs: JobsDep) -> Response:
    """index, x, y, label, predicted class of every point: the result, or the latest frame while running."""
    text, name = projection_csv(_projection_job(jobs, job_id))
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
