"""Models: list, card, layer tree, predictions, activations and weights."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from server.api.deps import AdmissionDep, ExploreDep, SettingsDep, WeightPullsDep, ZooDep, read_upload
from server.api.openapi import error_responses
from server.api.schemas.models import (
    ActivationsOut,
    FilterWeightsOut,
    LayersOut,
    LayerWeightsOut,
    ModelCardOut,
    ModelSummary,
    PredictOut,
)
from server.errors import InvalidInputError
from server.redact import redact
from server.zoo.manager import model_origin, weights_status

router = APIRouter(
    prefix="/api/v1/models", tags=["models"], responses=error_responses(400, 404, 409, 413, 415, 422, 507)
)

Untrained = Annotated[
    bool, Query(description="Build the architecture with random weights (explicit opt-in; responses say so).")
]


Precision = Annotated[
    Literal["exact", "fast"],
    Form(
        description='"exact": fp32 (the default); "fast": bf16 autocast where the hardware has it (CPU with '
        "AVX-512 bf16 or AMX, CUDA): on Lite0 about 5% mean relative activation error, top-1 unchanged on "
        "the bundled photos (docs/BENCHMARKS.md); the answer's `precision` says what ran"
    ),
]


@router.get("", response_model=list[ModelSummary])
def list_models(zoo: ZooDep, settings: SettingsDep) -> list[dict[str, Any]]:
    """Every registered model with its weights status."""
    out = []
    for spec in zoo.specs():
        status, _source, message = weights_status(spec)
        c = spec.card
        out.append(
            {
                "id": c.id,
                "architecture": c.architecture,
                "source": c.source,
                "pretrained": status == "available",
                "weights_status": "available" if status == "available" else "weights unavailable",
                "weights_message": redact(message, settings),
                "input_size": list(c.input_size),
                "num_classes": c.num_classes,
                "description": c.description,
                "default_layer": c.default_layer,
                "origin": model_origin(spec),
                "kind": c.kind,
                "gan": c.gan,
            }
        )
    return out


@router.get("/{model_id}", response_model=ModelCardOut)
def model_card(
    model_id: str, zoo: ZooDep, settings: SettingsDep, pulls: WeightPullsDep, untrained: Untrained = False
) -> dict[str, Any]:
    """The full model card."""
    card = zoo.card(model_id)
    spec = zoo.spec(model_id)
    status, source, message = weights_status(spec)
    d = card.to_dict()
    d["metrics"] = spec.metrics() if spec.metrics and not untrained else {}
    d.update(
        origin=model_origin(zoo.spec(model_id)),
        pretrained=(status == "available") and not untrained,
        weights_status="untrained"
        if untrained
        else ("available" if status == "available" else "weights unavailable"),
        weights_message=redact(message, settings)
        if not untrained
        else "Random weights, built on request (?untrained=true).",
        weights_source=redact(source, settings) if not untrained else "random initialisation",
        untrained=untrained,
        weights_pull=pulls.can_pull(model_id),
    )
    return d


@router.get("/{model_id}/layers", response_model=LayersOut)
def model_layers(model_id: str, zoo: ZooDep, untrained: Untrained = False) -> dict[str, Any]:
    """The layer tree with dotted names, kinds and traced output shapes."""
    lm = zoo.load(model_id, untrained)
    return {**lm.describe(), "layers": [layer.to_dict() for layer in lm.layers()]}


@router.post("/{model_id}/predict", response_model=PredictOut)
async def predict(
    model_id: str,
    zoo: ZooDep,
    settings: SettingsDep,
    svc: ExploreDep,
    admission: AdmissionDep,
    image: Annotated[UploadFile, File(description="JPEG, PNG, WebP, BMP, GIF or TIFF")],
    top_k: Annotated[int, Form(ge=1, le=100)] = 5,
    precision: Precision = "exact",
    untrained: Untrained = False,
) -> dict[str, Any]:
    """Top-k classes for an uploaded image, best first."""
    data = await read_upload(image, settings)

    def work() -> dict[str, Any]:  # CPU-bound: off the event loop so /healthz stays responsive
        lm = zoo.load(model_id, untrained)
        img, sha = svc.decode(data)
        return svc.predict(lm, img, sha, top_k, precision)

    async with admission.slot(model_id):
        return await run_in_threadpool(work)


@router.post("/{model_id}/activations", response_model=ActivationsOut)
async def activations(
    model_id: str,
    zoo: ZooDep,
    settings: SettingsDep,
    svc: ExploreDep,
    admission: AdmissionDep,
    layer: Annotated[str, Form(min_length=1, description="dotted layer name from /layers")],
    image: Annotated[
        UploadFile | None, File(description="JPEG, PNG, WebP, BMP, GIF or TIFF (every model but a generator)")
    ] = None,
    scale: Annotated[str, Form(pattern="^(per_channel|shared)$")] = "per_channel",
    latent_seed: Annotated[
        int | None,
        Form(ge=0, description="a generator's input: the latent of this seed (instead of an image)"),
    ] = None,
    precision: Precision = "exact",
    untrained: Untrained = False,
    top_k: Annotated[
        int | None,
        Form(
            ge=1,
            le=100,
            description="also the image's top-k predictions, from the same forward (Explore's camera frames)",
        ),
    ] = None,
) -> Response:
    """Per-channel statistics and links to a mosaic PNG, one PNG per channel and the raw .npy; with
    ``top_k``, the image's predictions too (``predictions``, as POST /predict gives them).

    A generator (card ``kind: generator``) takes ``latent_seed`` instead of an image."""
    generator = zoo.card(model_id).kind == "generator"
    if generator and latent_seed is None:
        raise InvalidInputError(
            f"Model '{model_id}' is a generator: its input is a latent; send latent_seed."
        )
    data = None if latent_seed is not None else await read_upload(image, settings)

    def work() -> dict[str, Any]:
        lm = zoo.load(model_id, untrained)
        lm.layer(layer)  # 404 before decoding work
        if latent_seed is not None:
            return svc.latent_activations(lm, latent_seed, layer, scale == "shared", precision)
        img, sha = svc.decode(data)
        return svc.activations(lm, img, sha, layer, scale == "shared", precision, top_k)

    # The body is already JSON-safe: orjson writes it in 0.1 ms, where FastAPI's encoder walk plus
    # json.dumps took ~12 ms for the 1,280 channels of Lite0's conv_head.
    async with admission.slot(model_id):
        body = await run_in_threadpool(work)
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/{model_id}/layers/{layer}/weights", response_model=LayerWeightsOut)
def layer_weights(
    model_id: str, layer: str, zoo: ZooDep, explore: ExploreDep, untrained: Untrained = False
) -> dict[str, Any]:
    """Filter statistics of a conv or linear layer; RGB tiles for the first conv layer."""
    lm = zoo.load(model_id, untrained)
    return explore.weights(lm, layer)


@router.get("/{model_id}/layers/{layer}/weights/{index}", response_model=FilterWeightsOut)
def filter_weights(
    model_id: str, layer: str, index: int, zoo: ZooDep, explore: ExploreDep, untrained: Untrained = False
) -> dict[str, Any]:
    """The raw weights of one filter (input channels x kh x kw), for heat maps."""
    lm = zoo.load(model_id, untrained)
    return explore.filter_weights(lm, layer, index)
