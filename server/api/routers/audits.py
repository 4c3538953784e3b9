"""Neuron audits, run as jobs: POST /api/v1/audits, then poll /api/v1/jobs/{job_id} for the result."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from server.api.deps import AuditsDep, JobsDep, start_job
from server.api.openapi import error_responses
from server.api.schemas.audits import AuditIn, AuditJobOut
from server.audits import AuditRequest
from server.engine.audit import AuditThresholds

router = APIRouter(
    prefix="/api/v1/audits", tags=["audits"], responses=error_responses(400, 404, 409, 422, 507)
)


@router.post("", response_model=AuditJobOut, status_code=status.HTTP_202_ACCEPTED)
async def start_audit(body: AuditIn, audits: AuditsDep, jobs: JobsDep) -> AuditJobOut:
    """Validate everything that can be checked up front (4xx), then queue the audit job."""
    plan = await run_in_threadpool(audits.plan, AuditRequest.from_params(body.model_dump()))
    return await start_job(jobs, plan, AuditJobOut)


@router.get("/thresholds", response_model=dict[str, float])
def default_thresholds() -> dict[str, float]:
    """The default thresholds (each adjustable per request, all in [0, 1])."""
    return AuditThresholds().to_dict()
