"""Checkpoints of a model: list them, and compare them as a job (weight updates between snapshots)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from server.api.deps import CheckpointsDep, JobsDep, ZooDep, start_job
from server.api.openapi import error_responses
from server.api.schemas.audits import CheckpointCompareIn, CheckpointCompareJobOut, CheckpointsOut

router = APIRouter(
    prefix="/api/v1/checkpoints", tags=["checkpoints"], responses=error_responses(400, 404, 409, 422, 507)
)


@router.get("/{model_id}", response_model=CheckpointsOut)
def list_checkpoints(model_id: str, zoo: ZooDep, checkpoints: CheckpointsDep) -> dict[str, Any]:
    """The checkpoint files stored under models/<model_id>/ (e.g. digits_cnn's training snapshots)."""
    zoo.spec(model_id)
    return {"model": model_id, "checkpoints": list(checkpoints.files(model_id))}


@router.post("/compare", response_model=CheckpointCompareJobOut, status_code=status.HTTP_202_ACCEPTED)
async def compare_checkpoints(
    body: CheckpointCompareIn, checkpoints: CheckpointsDep, jobs: JobsDep
) -> CheckpointCompareJobOut:
    """Check the checkpoints exist and share one architecture (422 naming the differences), then queue."""
    plan = await run_in_threadpool(checkpoints.plan, body.model_dump())
    return await start_job(jobs, plan, CheckpointCompareJobOut)
