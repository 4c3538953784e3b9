"""Response schemas of the model resources."""

from __future__ import annotations

from typing import Any

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


class ModelCardOut(ModelSummary):
    mean: list[float]
    std: list[float]
    crop_pct: float
    interpolation: str
    labels: list[str]
    weights_source: str
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


class PredictOut(BaseModel):
    model: str
    untrained: bool
    pretrained: bool
    image_sha256: str
    predictions: list[PredictionOut]
    input_url: str
