"""Schemas of the audit and checkpoint resources (results come back through /api/v1/jobs)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.api.schemas.jobs import CachedJobStarted, JobStarted
from server.engine.audit import AuditThresholds

# Threshold overrides: known names only, each in [0, 1] (the contract states both; the audit checks them too).
Thresholds = dict[str, Annotated[float, Field(ge=0, le=1)]]
THRESHOLD_NAMES = {"propertyNames": {"enum": sorted(AuditThresholds().to_dict())}}


class AuditIn(BaseModel):
    model: str = Field(description="Zoo model id, e.g. digits_cnn or efficientnet_lite0.")
    dataset: str = Field(description="Dataset id, e.g. the built-in 'digits'.")
    untrained: bool = Field(
        False, description="Audit the architecture with random weights (explicit opt-in)."
    )
    thresholds: Thresholds = Field(
        default_factory=dict,
        description="Overrides of the default thresholds, each in [0, 1] (docs/AUDIT.md).",
        json_schema_extra=THRESHOLD_NAMES,
    )
    max_images: int | None = Field(
        None, ge=2, description="Audit an even spread of at most this many images."
    )
    batch_size: int = Field(64, ge=1, le=1024)
    what_if: bool = Field(
        False, description="Zero the flagged filters and report the accuracy change (labelled data)."
    )
    what_if_kinds: list[Literal["dead", "saturated", "low_variance", "redundant"]] = ["dead", "redundant"]
    fail_on: str | None = Field(
        None, description="Gates such as 'dead>5%, redundant>=3'; reported in the result."
    )
    positions_per_image: int = Field(
        4, ge=1, le=4096, description="Positions per image sampled for the filter correlations."
    )


class CheckpointRefIn(BaseModel):
    model: str
    checkpoint: str | None = Field(
        None, description="A file of models/<model>/ by name or stem; none: the zoo weights."
    )
    untrained: bool = False


class CheckpointCompareIn(BaseModel):
    # Checkpoints given by name are files of `model`: the contract says so (anyOf), not only the code.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["model"], "properties": {"model": {"type": "string", "minLength": 1}}},
                {"properties": {"checkpoints": {"items": {"$ref": "#/components/schemas/CheckpointRefIn"}}}},
            ]
        }
    )

    model: str | None = Field(None, description="The model of checkpoints given by name.")
    checkpoints: list[str | CheckpointRefIn] = Field(
        description="Two or more checkpoints, compared in order (names of files in models/<model>/ or refs).",
        min_length=2,
    )
    thresholds: Thresholds = Field(
        default_factory=dict,
        description="e.g. {'unchanged_update': 1e-6}.",
        json_schema_extra=THRESHOLD_NAMES,
    )


class AuditJobOut(CachedJobStarted):
    model: str
    dataset: str
    untrained: bool


class CheckpointCompareJobOut(JobStarted):
    checkpoints: list[str] = Field(description="the labels of the compared checkpoints, in order")
    untrained: bool


class CheckpointsOut(BaseModel):
    model: str
    checkpoints: list[str] = Field(description="file stems under models/<model>/")
