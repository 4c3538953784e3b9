"""Neuron audits, run as jobs: POST /api/v1/audits, then poll /api/v1/jobs/{job_id} for the result."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from server.api.deps import DatasetsDep, JobsDep, SettingsDep, ZooDep
from server.api.schemas.audits import AuditIn
from server.engine.audit import AuditThresholds
from server.tasks.audits import AUDIT_TASK, AuditRequest, audit_key, model_label_map
from server.zoo.registry import get_spec

router = APIRouter(prefix="/api/v1/audits", tags=["audits"])


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def start_audit(
    body: AuditIn, settings: SettingsDep, zoo: ZooDep, datasets: DatasetsDep, jobs: JobsDep
) -> dict[str, Any]:
    """Validate everything that can be checked up front (4xx), then queue the audit job."""
    req = AuditRequest.from_params(body.model_dump())
    req.validate()
    get_spec(req.model)  # 404 with suggestions
    info = await run_in_threadpool(datasets.get, req.dataset)  # 404; creates a built-in on first use
    if req.what_if:
        loaded = await run_in_threadpool(zoo.load, req.model, req.untrained)
        model_label_map(info, loaded)  # 422 for unlabelled data or classes the model does not have
    key = audit_key(req, info)
    state = jobs.submit(AUDIT_TASK, {**req.params(), "data_dir": str(settings.data_dir)}, cache_key=key)
    return {
        "job_id": state.id,
        "status": state.status,
        "cached": state.status == "succeeded",
        "job_url": f"/api/v1/jobs/{state.id}",
        "model": req.model,
        "dataset": req.dataset,
        "untrained": req.untrained,
    }


@router.get("/thresholds")
def default_thresholds() -> dict[str, float]:
    """The default thresholds (each adjustable per request, all in [0, 1])."""
    return AuditThresholds().to_dict()
