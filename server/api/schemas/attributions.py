"""Response schema of the attributions resource (the request is a multipart form)."""

from __future__ import annotations

from pydantic import BaseModel


class AttributionMap(BaseModel):
    channel: int | None = None
    neuron: int | None = None
    class_index: int | None = None
    value: float  # the target's activation (or class score) on this image
    position: list[int] | None = None  # where a `max` filter target was strongest
    png_url: str
    npy_url: str


class AttributionsOut(BaseModel):
    model: str
    untrained: bool
    pretrained: bool
    method: str
    layer: str | None
    position: str
    target_kind: str  # filter | neuron | class | top_k
    image_sha256: str
    map_shape: list[int]
    png_url: str  # the first (or only) map
    npy_url: str
    input_url: str
    maps: list[AttributionMap]
