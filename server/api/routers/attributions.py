"""Attributions: deconvnet, guided backprop, gradient and Grad-CAM maps for an uploaded image."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from starlette.concurrency import run_in_threadpool

from server.api.deps import AdmissionDep, AttributionsDep, SettingsDep, ZooDep, read_upload
from server.api.openapi import error_responses
from server.api.schemas.attributions import AttributionsOut
from server.attributions import MAX_TOP_K, AttributionRequest

router = APIRouter(
    prefix="/api/v1/models",
    tags=["attributions"],
    responses=error_responses(400, 404, 409, 413, 415, 422, 507),
)


@router.post("/{model_id}/attributions", response_model=AttributionsOut)
async def attributions(
    model_id: str,
    zoo: ZooDep,
    settings: SettingsDep,
    svc: AttributionsDep,
    admission: AdmissionDep,
    image: Annotated[UploadFile, File(description="JPEG, PNG, WebP, BMP, GIF or TIFF")],
    method: Annotated[
        str, Form(pattern="^(deconvnet|guided_backprop|gradient|gradcam)$", description="how to project back")
    ] = "guided_backprop",
    layer: Annotated[str | None, Form(description="dotted layer name from /layers")] = None,
    channel: Annotated[int | None, Form(ge=0, description="filter; omitted: the strongest filter(s)")] = None,
    neuron: Annotated[int | None, Form(ge=0, description="flat index into the layer's output")] = None,
    class_index: Annotated[
        int | None, Form(ge=0, description="explain a class score (Grad-CAM: default top-1)")
    ] = None,
    position: Annotated[
        str, Form(pattern="^(max|all)$", description="filter: strongest position or whole map")
    ] = "max",
    top_k: Annotated[
        int | None, Form(ge=1, le=MAX_TOP_K, description="the k strongest filters of the layer")
    ] = None,
    untrained: Annotated[bool, Query(description="random weights (explicit opt-in)")] = False,
) -> dict[str, Any]:
    """A map per target, with links to a PNG and to the raw map as .npy (first map also at top level)."""
    data = await read_upload(image, settings)
    req = AttributionRequest(method, layer or None, channel, neuron, class_index, position, top_k)

    def work() -> dict[str, Any]:  # CPU-bound: off the event loop
        lm = zoo.load(model_id, untrained)
        req.validate(lm)  # 422 before decoding work
        img, sha = svc.decode(data)
        return svc.compute(lm, img, sha, req)

    async with admission.slot(model_id):
        return await run_in_threadpool(work)
