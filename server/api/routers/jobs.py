"""Jobs: status, progress, the latest frame, the result; DELETE cancels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from server.api.deps import JobsDep
from server.api.openapi import error_responses
from server.api.schemas.jobs import JobOut

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=error_responses(404, 422))


def job_out(state: Any, since: int | None = None) -> dict[str, Any]:
    d = state.to_dict()
    d.pop("cache_key", None)
    if since is not None and d["frame_index"] <= since:
        d["frame"] = None  # the client already has this frame
    return d


@router.get("", response_model=list[JobOut])
def list_jobs(jobs: JobsDep) -> list[dict[str, Any]]:
    return [job_out(s, since=10**9) | {"result": None} for s in jobs.store.list()]


@router.get("/{job_id}", response_model=JobOut)
def get_job(
    job_id: str, jobs: JobsDep, since: int | None = Query(None, description="omit the frame if not newer")
) -> dict[str, Any]:
    return job_out(jobs.get(job_id), since)


@router.delete("/{job_id}", response_model=JobOut)
def cancel_job(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    return job_out(jobs.cancel(job_id))
