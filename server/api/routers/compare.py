"""Compare: one image through two models or two checkpoints, and the CKA between their layers as a job."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, File, Form, Response, UploadFile, status
from starlette.concurrency import run_in_threadpool

from server.api.deps import AdmissionDep, CompareDep, JobsDep, SettingsDep, read_upload, start_job
from server.api.openapi import error_responses
from server.api.schemas.compare import CkaIn, CkaJobOut, CompareOut
from server.checkpoints import CheckpointRef
from server.compare import MAX_CHANGED_FILTERS, CompareRequest

router = APIRouter(
    prefix="/api/v1/compare", tags=["compare"], responses=error_responses(400, 404, 409, 413, 415, 422, 507)
)

Checkpoint = Annotated[
    str | None,
    Form(description="a file of models/<model>/ by name or stem (e.g. epoch_01); none: the zoo weights"),
]
Layer = Annotated[str | None, Form(description="dotted layer name from /layers")]


@router.post("", response_model=CompareOut)
async def compare(
    settings: SettingsDep,
    svc: CompareDep,
    admission: AdmissionDep,
    image: Annotated[UploadFile, File(description="JPEG, PNG, WebP, BMP, GIF or TIFF")],
    model_a: Annotated[str, Form(min_length=1, description="side A: a zoo model id")],
    model_b: Annotated[
        str | None, Form(description="side B: a zoo model id; none: model_a (two of its checkpoints)")
    ] = None,
    checkpoint_a: Checkpoint = None,
    checkpoint_b: Checkpoint = None,
    layer_a: Annotated[
        str | None, Form(description="dotted layer name from /layers; none: the model's default layer")
    ] = None,
    layer_b: Annotated[
        str | None, Form(description="none: layer_a for one model, else B's default layer")
    ] = None,
    untrained_a: Annotated[bool, Form(description="side A with random weights (explicit opt-in)")] = False,
    untrained_b: Annotated[bool, Form(description="side B with random weights (explicit opt-in)")] = False,
    top_k: Annotated[int, Form(ge=1, le=100)] = 5,
    changed: Annotated[
        int, Form(ge=1, le=MAX_CHANGED_FILTERS, description="checkpoints: how many changed filters to show")
    ] = 8,
) -> Response:
    """Both sides' predictions and a layer's activations (mosaic links as /activations gives them); for two
    checkpoints of one model, the filters that moved most between them, with weights and maps before and after.
    The two sides must differ (422)."""
    data = await read_upload(image, settings)
    req = CompareRequest(
        CheckpointRef(model_a, checkpoint_a or None, untrained_a),
        CheckpointRef(model_b or model_a, checkpoint_b or None, untrained_b),
        layer_a or None,
        layer_b or None,
        top_k,
        changed,
    )

    def work() -> dict[str, Any]:  # CPU-bound: off the event loop
        svc.load(req)  # 404 / 422 before decoding work
        img, sha = svc.explore.decode(data)
        return svc.compare(req, img, sha)

    async with AsyncExitStack() as stack:
        for model in sorted({req.a.model, req.b.model}):  # one order for every request: no deadlock
            await stack.enter_async_context(admission.slot(model))
        body = await run_in_threadpool(work)
    return Response(orjson.dumps(body), media_type="application/json")


@router.post("/cka", response_model=CkaJobOut, status_code=status.HTTP_202_ACCEPTED)
async def start_cka(body: CkaIn, svc: CompareDep, jobs: JobsDep) -> CkaJobOut:
    """Check both sides, their layers and the dataset (4xx), then queue the job; the same request again is
    answered by its finished job (``cached``). The result (GET /api/v1/jobs/{job_id}) is a CkaResultOut."""
    plan = await run_in_threadpool(svc.plan_cka, body.model_dump())
    return await start_job(jobs, plan, CkaJobOut)
