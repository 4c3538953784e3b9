"""DeepVis: activation-maximisation jobs and the top-9 dataset images of a filter; poll, stream and
cancel them under /api/v1/jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from server.api.deps import DatasetsDep, JobsDep, SettingsDep, ZooDep
from server.api.schemas.optvis import DeepVisJobOut, DeepVisRequest, TopImagesJobOut, TopImagesRequest
from server.tasks.deepvis import (
    DEEPVIS_TASK,
    TOP_IMAGES_TASK,
    check_target,
    config_for,
    deepvis_key,
    top_images_key,
)

router = APIRouter(prefix="/api/v1/models", tags=["deepvis"])


@router.post("/{model_id}/deepvis", response_model=DeepVisJobOut, status_code=202)
async def start_deepvis(
    model_id: str,
    body: DeepVisRequest,
    zoo: ZooDep,
    jobs: JobsDep,
    settings: SettingsDep,
    untrained: Annotated[bool, Query(description="random weights (explicit opt-in)")] = False,
) -> dict[str, Any]:
    """Validate the target and every knob (422 on nonsense), then start a job or return the cached one."""

    def work() -> dict[str, Any]:
        lm = zoo.load(model_id, untrained)
        target = body.target.model_dump()
        check_target(lm, target)
        cfg = config_for(lm, body.preset, body.knobs())
        params = {
            "model": model_id,
            "untrained": untrained,
            "target": target,
            "preset": body.preset,
            "knobs": body.knobs(),
            "data_dir": str(settings.data_dir),
        }
        key = deepvis_key(lm, target, body.preset, cfg)
        state = jobs.submit(DEEPVIS_TASK, params, cache_key=key)
        return {
            "job_id": state.id,
            "status": state.status,
            "cached": state.status == "succeeded",
            "job_url": f"/api/v1/jobs/{state.id}",
            **lm.describe(),
            "config": cfg.to_dict(),
        }

    return await run_in_threadpool(work)


@router.post("/{model_id}/top-images", response_model=TopImagesJobOut, status_code=202)
async def start_top_images(
    model_id: str,
    body: TopImagesRequest,
    zoo: ZooDep,
    jobs: JobsDep,
    datasets: DatasetsDep,
    settings: SettingsDep,
    untrained: Annotated[bool, Query(description="random weights (explicit opt-in)")] = False,
) -> dict[str, Any]:
    """Top-k dataset images of a filter, each with its deconvolution crop, as a job (cached per dataset content)."""

    def work() -> dict[str, Any]:
        lm = zoo.load(model_id, untrained)
        check_target(lm, {"layer": body.layer, "channel": body.channel})
        info = datasets.get(body.dataset)  # 404 with suggestions for an unknown dataset
        params = {
            **body.model_dump(),
            "model": model_id,
            "untrained": untrained,
            "data_dir": str(settings.data_dir),
        }
        key = top_images_key(lm, info.content_hash, body.layer, body.channel, body.k)
        state = jobs.submit(TOP_IMAGES_TASK, params, cache_key=key)
        return {
            "job_id": state.id,
            "status": state.status,
            "cached": state.status == "succeeded",
            "job_url": f"/api/v1/jobs/{state.id}",
            **lm.describe(),
            "dataset": info.id,
            "num_images": info.num_images,
        }

    return await run_in_threadpool(work)
