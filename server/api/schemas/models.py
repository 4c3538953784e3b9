"""Response schemas of the model resources."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelOrigin(BaseModel):
    """Where a model came from (issue 18)."""

    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(
        alias="class",
        description="what builds it: 'file:Class' of the user-code folder, a torchvision/timm name, ...",
    )
    checkpoint: str = Field(description="the weights file's name ('' when there is none here)")
    format: str = Field(description="safetensors, state dict, training checkpoint, torch.export, TorchScript")
    group: str = Field(description="'built-in' (shipped with ConvLens) or 'lab' (the lab's catalogue)")


class ModelSummary(BaseModel):
    id: str
    architecture: str
    source: str
    pretrained: bool
    weights_status: str
    weights_message: str
    input_size: list[int]
    num_classes: int
    description: str
    default_layer: str
    origin: ModelOrigin
    kind: str = "classifier"  # classifier | generator | discriminator | recurrent
    gan: str = ""  # a generator's or discriminator's GAN: GET /api/v1/gan/{gan}/...


class ModelCardOut(ModelSummary):
    mean: list[float]
    std: list[float]
    crop_pct: float
    interpolation: str
    labels: list[str]
    weights_source: str
    weights_pull: bool = Field(
        False,
        description="POST /api/v1/models/{id}/weights/pull would start a pull: downloads allowed "
        "(CONVLENS_ALLOW_WEIGHT_DOWNLOADS), official weights exist, none on this machine yet",
    )
    pretrained_on: str
    untrained: bool
    recurrent: dict[str, Any] = {}  # recurrent models: cell, input_length, hidden_size, gates, ...
    metrics: dict[str, Any] = {}  # what training measured, e.g. held_out_accuracy (models trained here)


class LayerOut(BaseModel):
    name: str
    type: str
    kind: str
    output_shape: list[int] | None
    channels: int | None
    parent: str
    depth: int
    num_params: int


class LayersOut(BaseModel):
    model: str
    untrained: bool
    pretrained: bool
    layers: list[LayerOut]


class PredictionOut(BaseModel):
    index: int
    label: str
    probability: float


PRECISION_DOC = 'what produced the numbers: "exact" (fp32) or "fast (...)" (bf16 autocast; precision=fast)'
COMPILED_DOC = (
    "whether torch.compile'd code produced it (CONVLENS_COMPILE=auto: exact answers run compiled once the "
    "background compile of that model, layer and batch shape is ready; until then, and for fast precision, eager)"
)


class PredictOut(BaseModel):
    model: str
    untrained: bool
    pretrained: bool
    precision: str = Field("exact", description=PRECISION_DOC)
    compiled: bool = Field(False, description=COMPILED_DOC)
    image_sha256: str
    predictions: list[PredictionOut]
    input_url: str


class ChannelStatsOut(BaseModel):
    index: int
    mean: float
    max: float
    min: float
    fraction_active: float


class MosaicGridOut(BaseModel):
    rows: int
    cols: int
    tile_h: int
    tile_w: int
    pad: int


class ActivationsOut(BaseModel):
    model: str
    untrained: bool
    pretrained: bool
    precision: str = Field("exact", description=PRECISION_DOC)
    compiled: bool = Field(False, description=COMPILED_DOC)
    layer: str
    layer_type: str
    kind: str
    image_sha256: str
    shape: list[int]
    scale: Literal["per_channel", "shared"]
    value_range: list[float]
    channels: list[ChannelStatsOut]
    silent_channels: list[int]
    mosaic_url: str
    mosaic_grid: MosaicGridOut
    channel_url_template: str = Field(description="replace {index} with a channel index")
    npy_url: str
    input_url: str
    predictions: list[PredictionOut] | None = Field(
        None, description="with top_k: the image's top-k predictions, from the same forward"
    )


class FilterStatsOut(BaseModel):
    index: int
    norm: float
    mean: float
    fraction_positive: float


class LayerWeightsOut(BaseModel):
    model: str
    untrained: bool
    pretrained: bool
    layer: str
    type: str
    shape: list[int]
    is_first_conv: bool
    fraction_positive: float
    filters: list[FilterStatsOut]
    rgb_tiles_url: str | None


class FilterWeightsOut(BaseModel):
    model: str
    untrained: bool
    pretrained: bool
    layer: str
    index: int
    shape: list[int]
    values: list[Any] = Field(
        description="nested lists: input channels x kh x kw (or the inputs of a linear unit)"
    )
    rgb: list[list[list[int]]] | None = Field(None, description="first conv layer: the filter as RGB pixels")
