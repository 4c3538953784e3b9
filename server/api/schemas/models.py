"""Response schemas of the model resources."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


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
    kind: str = "cnn"  # cnn | recurrent


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
