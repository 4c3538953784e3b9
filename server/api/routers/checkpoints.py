"""Checkpoints of a model: list them, and compare them as a job (weight updates between snapshots)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from server.api.deps import JobsDep, SettingsDep, ZooDep
from server.api.schemas.audits import CheckpointCompareIn
from server.engine.audit import AuditThresholds, check_same_architecture
from server.tasks.audits import COMPARE_TASK, checkpoint_files, checkpoint_refs, load_checkpoint
from server.zoo.registry import get_spec

router = APIRouter(prefix="/api/v1/checkpoints", tags=["checkpoints"])


@router.get("/{model_id}")
def list_checkpoints(model_id: str, settings: SettingsDep) -> dict[str, Any]:
    """The checkpoint files stored under models/<model_id>/ (e.g. digits_cnn's training snapshots)."""
    get_spec(model_id)
    return {"model": model_id, "checkpoints": list(checkpoint_files(settings, model_id))}


@router.post("/compare", status_code=status.HTTP_202_ACCEPTED)
async def compare_checkpoints(
    body: CheckpointCompareIn, settings: SettingsDep, zoo: ZooDep, jobs: JobsDep
) -> dict[str, Any]:
    """Check the checkpoints exist and share one architecture (422 naming the differences), then queue."""
    params = body.model_dump()
    AuditThresholds.from_mapping(params["thresholds"])
    refs = checkpoint_refs(params)

    def check() -> None:
        first = load_checkpoint(refs[0], settings, zoo)
        for ref in refs[1:]:
            check_same_architecture(first, load_checkpoint(ref, settings, zoo), (refs[0].label, ref.label))

    await run_in_threadpool(check)
    state = jobs.submit(COMPARE_TASK, {**params, "data_dir": str(settings.data_dir)})
    return {
        "job_id": state.id,
        "status": state.status,
        "job_url": f"/api/v1/jobs/{state.id}",
        "checkpoints": [ref.label for ref in refs],
        "untrained": any(r.untrained for r in refs),
    }
