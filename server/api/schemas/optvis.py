"""Request and response schemas of the DeepVis resource."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from server.api.schemas.jobs import CachedJobStarted


def _target_error(message: str) -> PydanticCustomError:
    # A custom error keeps the exception object out of the 422 body (it must stay JSON-serialisable).
    return PydanticCustomError("deepvis_target", message)


_NULL = {"type": "null"}
_INDEX = {"type": "integer", "minimum": 0}
_LAYER = {"type": "string"}


class DeepVisTarget(BaseModel):
    """A filter (``layer`` + ``channel``), a neuron (``layer`` + flat ``neuron`` index) or a class."""

    # The three shapes of a target, in the contract too (the validator below enforces the same).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["class_index"],
                    "properties": {"class_index": _INDEX, "layer": _NULL, "channel": _NULL, "neuron": _NULL},
                },
                {
                    "required": ["layer", "channel"],
                    "properties": {"layer": _LAYER, "channel": _INDEX, "neuron": _NULL, "class_index": _NULL},
                },
                {
                    "required": ["layer", "neuron"],
                    "properties": {"layer": _LAYER, "neuron": _INDEX, "channel": _NULL, "class_index": _NULL},
                },
            ]
        },
    )

    layer: str | None = None
    channel: int | None = Field(None, ge=0)
    neuron: int | None = Field(None, ge=0)
    class_index: int | None = Field(None, ge=0)

    @field_validator("channel", "neuron", "class_index", mode="before")
    @classmethod
    def not_a_bool(cls, v: object) -> object:
        if isinstance(v, bool):  # JSON false is not the class 0 (the schema says integer)
            raise _target_error("an index must be an integer, not true or false")
        return v

    @model_validator(mode="after")
    def one_target(self) -> DeepVisTarget:
        if self.class_index is not None:
            if self.layer is not None or self.channel is not None or self.neuron is not None:
                raise _target_error("give either class_index alone, or layer with channel or neuron")
            return self
        if self.layer is None:
            raise _target_error("give layer with channel or neuron, or class_index")
        if (self.channel is None) == (self.neuron is None):
            raise _target_error("a layer target needs exactly one of channel or neuron")
        return self


class TransformsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jitter: int | None = Field(None, ge=0)
    scales: list[float] | None = Field(None, min_length=1)
    degrees: float | None = Field(None, ge=0, le=180)


class DeepVisRequest(BaseModel):
    """Every knob of the render; any left out comes from the preset."""

    model_config = ConfigDict(extra="forbid")

    target: DeepVisTarget
    preset: Literal["deepvis", "lucid", "fooling"] = "deepvis"
    steps: int = Field(256, gt=0, le=10_000)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    lr: float | None = Field(None, gt=0, le=100)
    param: Literal["pixel", "fft"] | None = None
    init_sd: float | None = Field(None, ge=0, le=10)
    decorrelate: bool | None = None
    decay_power: float | None = Field(None, ge=0, le=4)
    l2_decay: float | None = Field(None, ge=0, lt=1)
    blur_every: int | None = Field(None, ge=0)
    blur_sigma: float | None = Field(None, ge=0)
    clip_norm_pct: float | None = Field(None, ge=0, lt=100)
    clip_contrib_pct: float | None = Field(None, ge=0, lt=100)
    frame_every: int | None = Field(None, gt=0)
    transforms: TransformsIn | None = None

    def knobs(self) -> dict:
        d = self.model_dump(exclude={"target", "preset"}, exclude_none=True)
        if "transforms" in d:
            d["transforms"] = {k: v for k, v in d["transforms"].items() if v is not None}
        return d


class DeepVisJobOut(CachedJobStarted):
    model: str
    untrained: bool
    config: dict


class TopImagesRequest(BaseModel):
    """The DeepVis toolbox's top-9 for one filter over a stored dataset."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1)
    layer: str = Field(min_length=1)
    channel: int = Field(ge=0)
    k: int = Field(9, ge=1, le=64)


class TopImagesJobOut(CachedJobStarted):
    model: str
    untrained: bool
    dataset: str
    num_images: int
