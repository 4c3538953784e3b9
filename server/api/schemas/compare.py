"""Schemas of the compare resources: one image through two sides (the request is a multipart form), and the
CKA job between their layers (its result comes back through /api/v1/jobs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from server.api.schemas.jobs import CachedJobStarted
from server.api.schemas.models import ActivationsOut, PredictionOut


class CompareSideIn(BaseModel):
    model: str = Field(min_length=1, description="Zoo model id, e.g. digits_cnn or efficientnet_lite0.")
    checkpoint: str | None = Field(
        None, description="A file of models/<model>/ by name or stem (e.g. epoch_01); none: the zoo weights."
    )
    untrained: bool = Field(False, description="random weights (explicit opt-in)")


class SideOut(BaseModel):
    """Which model and weights one side is."""

    label: str = Field(description="model:checkpoint, model:weights or model:untrained")
    model: str
    checkpoint: str | None
    untrained: bool
    pretrained: bool
    weights: str = Field(description="where the side's weights come from")


class CompareSideOut(SideOut):
    layer: str
    predictions: list[PredictionOut]
    input_url: str = Field(description="the image as this side's model sees it")
    activations: ActivationsOut


class FilterSideOut(BaseModel):
    shape: list[int]
    values: list[Any] = Field(
        description="nested lists: input channels x kh x kw (or a linear unit's inputs)"
    )
    rgb: list[list[list[int]]] | None = Field(
        None, description="first conv layer on RGB: the filter's pixels"
    )
    map_url: str = Field(description="the filter's activation map on the image (PNG)")
    mean: float
    max: float


class ChangedFilterOut(BaseModel):
    layer: str
    index: int
    change: float = Field(description="||W_after - W_before|| / ||W_before|| of the filter")
    before: FilterSideOut
    after: FilterSideOut


class LayerUpdateOut(BaseModel):
    layer: str
    relative_update: float


class ChangedOut(BaseModel):
    scope: list[str] = Field(
        description="the layers ranked: the chosen layer if it has weights, else every conv"
    )
    relative_update: float
    epochs: float | None = Field(description="epochs between the checkpoints, when both names carry one")
    layers: list[LayerUpdateOut]
    filters: list[ChangedFilterOut] = Field(description="most changed first")


class CompareOut(BaseModel):
    mode: Literal["checkpoints", "models"] = Field(
        description="checkpoints: two sets of weights of one architecture; models: two architectures"
    )
    image_sha256: str
    same_top1: bool
    sides: list[CompareSideOut] = Field(min_length=2, max_length=2)
    changed: ChangedOut | None = Field(description="checkpoints only: the filters whose weights moved most")


class CkaIn(BaseModel):
    a: CompareSideIn
    b: CompareSideIn
    dataset: str = Field(min_length=1, description="Dataset id, e.g. the built-in 'lfw_subset' or 'digits'.")
    layers_a: list[str] = Field(
        default_factory=list, description="dotted layer names of A; none: its stages (blocks, conv, linear)"
    )
    layers_b: list[str] = Field(default_factory=list, description="as layers_a, for B")
    max_images: int = Field(
        64, ge=2, description="an even spread of at most this many images (CONVLENS_CKA_MAX_IMAGES at most)"
    )
    pool: Literal["mean", "max", "flatten"] = Field("mean", description="how a layer's maps become features")


class CkaJobOut(CachedJobStarted):
    a: str = Field(description="the label of side A")
    b: str
    dataset: str
    num_images: int


class CkaMatchOut(BaseModel):
    layer_a: str
    layer_b: str
    cka: float


class CkaResultOut(BaseModel):
    """The ``result`` of a finished ``compare_cka`` job (GET /api/v1/jobs/{job_id})."""

    a: SideOut
    b: SideOut
    dataset: str
    num_images: int
    pool: str
    layers_a: list[str]
    layers_b: list[str]
    cka: list[list[float]] = Field(
        description="rows: layers of A, columns: layers of B; linear CKA in [0, 1]"
    )
    best_match: list[CkaMatchOut] = Field(description="for each layer of A, the layer of B most like it")
