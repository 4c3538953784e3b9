"""Recurrent models (issue 15): a digit step by step, gate statistics, the vanishing and exploding gradient curves."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from server.api.deps import AdmissionDep, ExploreDep, RecurrentDep, SettingsDep, read_upload
from server.api.openapi import error_responses
from server.errors import InvalidInputError, UnsupportedMediaError
from server.recurrent import EXPLODING_SCALE, MAX_GRADIENT_IMAGES

router = APIRouter(
    prefix="/api/v1", tags=["recurrent"], responses=error_responses(400, 404, 409, 413, 415, 422, 507)
)

Untrained = Annotated[
    bool, Query(description="Build the architecture with random weights (explicit opt-in; responses say so).")
]


class SequenceRequest(BaseModel):
    dataset: str
    index: int


_SEQUENCE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "format": "binary", "minLength": 1}},
                    "required": ["image"],
                }
            },
            "application/json": {"schema": SequenceRequest.model_json_schema()},
        },
    }
}


@router.post("/models/{model_id}/sequence", openapi_extra=_SEQUENCE_BODY)
async def sequence(
    model_id: str,
    request: Request,
    settings: SettingsDep,
    svc: RecurrentDep,
    explore: ExploreDep,
    admission: AdmissionDep,
    untrained: Untrained = False,
) -> Response:
    """Every time step of one digit: hidden state, gates and cell state (.npy and heat-map PNG links, units x time),
    and the prediction after each step. Send a multipart ``image``, or JSON ``{"dataset": ..., "index": ...}``."""
    ctype = request.headers.get("content-type", "")
    data: bytes | None = None
    item: SequenceRequest | None = None
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("image")
        data = await read_upload(upload if not isinstance(upload, str) else None, settings)  # type: ignore[arg-type]
    elif ctype.startswith("application/json"):
        try:
            item = SequenceRequest.model_validate_json(await request.body())
        except ValidationError as e:
            fields = "; ".join(
                f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}" for err in e.errors()
            )
            raise InvalidInputError(f'Send JSON {{"dataset": "<id>", "index": <int>}} ({fields}).') from None
    else:
        raise UnsupportedMediaError(
            'Send a multipart form with an \'image\' file, or JSON {"dataset": "<id>", "index": <int>}.'
        )

    def work() -> dict[str, Any]:
        lm = svc.load(model_id, untrained)  # 404 / 422 (not recurrent) before any decoding
        if item is not None:
            x, label, source = svc.dataset_item(lm, item.dataset, item.index)
            return svc.sequence(lm, x, label, source)
        assert data is not None
        img, sha = explore.decode(data)
        return svc.sequence_of_image(lm, img, sha)

    async with admission.slot(model_id):
        body = await run_in_threadpool(work)
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/models/{model_id}/gate-stats")
def gate_stats(
    model_id: str,
    svc: RecurrentDep,
    dataset: Annotated[str, Query(description="dataset id, e.g. digits")] = "digits",
    bins: Annotated[int, Query(ge=2, le=200)] = 20,
    untrained: Untrained = False,
) -> dict[str, Any]:
    """Per unit and gate, the fractions of time steps below 0.1 and above 0.9 (Karpathy et al. 2015), over every
    step of every image; and the histogram of forget-gate (GRU: update-gate) values."""
    lm = svc.load(model_id, untrained)
    return svc.gate_stats(lm, dataset, bins)


def _model_list(models: str) -> list[str]:
    ids = [m.strip() for m in models.split(",") if m.strip()]
    if not ids:
        raise InvalidInputError("Name at least one recurrent model in 'models', comma-separated.")
    return ids


@router.get("/recurrent/gradient-flow")
def gradient_flow(
    svc: RecurrentDep,
    models: Annotated[
        str, Query(description="comma-separated recurrent model ids")
    ] = "seq_rnn,seq_lstm,seq_gru",
    dataset: str = "digits",
    limit: Annotated[int, Query(ge=1, le=MAX_GRADIENT_IMAGES, description="the first N images")] = 256,
    snapshot: Annotated[
        str | None, Query(description="a training snapshot, e.g. epoch_01 (default: final)")
    ] = None,
) -> dict[str, Any]:
    """The vanishing-gradient curve: the batch mean of ||dLoss/dh_t|| for every step t, per model."""
    return svc.gradient_flow(_model_list(models), dataset, limit, snapshot)


@router.get("/recurrent/gradient-flow/exploding")
def gradient_flow_exploding(
    svc: RecurrentDep,
    dataset: str = "digits",
    limit: Annotated[int, Query(ge=1, le=MAX_GRADIENT_IMAGES)] = 256,
    clip: Annotated[
        float, Query(gt=0, description="norm each step's backpropagated gradient is clipped to")
    ] = 1.0,
    gain: Annotated[
        float, Query(ge=1, le=10, description="gain of the random recurrent matrix")
    ] = EXPLODING_SCALE,
) -> dict[str, Any]:
    """A plain RNN initialised to explode: ||dLoss/dh_t|| per step without clipping and with clipping."""
    return svc.exploding(dataset, limit, clip, gain)
