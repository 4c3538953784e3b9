"""Request and response schemas of the projection resources."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.api.schemas.jobs import CachedJobStarted


class ProjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(description="zoo id, e.g. digits_cnn or efficientnet_lite0")
    layer: str = Field(description="dotted layer name from /api/v1/models/{id}/layers")
    dataset: str = Field(description="dataset id from /api/v1/datasets")
    method: Literal["tsne", "pca", "kpca", "isomap", "sammon", "umap"] = "tsne"
    params: dict[str, Any] = Field(default_factory=dict, description="see GET /api/v1/projections/methods")
    pool: Literal["mean", "max", "flatten"] = "mean"
    reduce: int | None = Field(None, ge=2, le=4096, description="PCA components before projecting")
    untrained: bool = False
    k: int = Field(10, ge=1, le=100, description="neighbours for k-NN purity and trustworthiness")
    seeds: list[int] | None = Field(
        None,
        description="2-5 seeds: the same projection per seed; result.stability gives the 10-NN Jaccard "
        "(t-SNE starts at random unless params.init is given)",
    )
    baseline: Literal["noise"] | None = Field(
        None, description="'noise': the same method on Gaussian noise of the same N and dimension"
    )
    perplexities: list[float] | None = Field(
        None, description="2-5 t-SNE perplexities (each < N / 3), sharing one neighbour graph"
    )


class ProjectionJobOut(CachedJobStarted):
    n_points: int
    method: str
    params: dict[str, Any]
    untrained: bool


class PerplexityGuidanceOut(BaseModel):
    n: int
    min: float
    max: float
    suggested: float
    limit: float = Field(description="perplexity must stay below this (N / 3)")
    reason: str


class LiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learning_rate: float | None = Field(None, gt=0, description="t-SNE epsilon for the following iterations")
    perplexity: float | None = Field(
        None, gt=0, description="recomputes P, reusing the neighbour graph if it can"
    )


class LiveOut(BaseModel):
    job_id: str
    status: str
    control: dict[str, Any]


class PointsOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    dataset: str
    n: int
    labels: list[int]
    classes: list[str]
    predictions: list[int]
    model_labels: list[str]
    thumbnail_url: str = Field(description="append the point index")
    explore_image_url: str = Field(description="append the point index")


class ParamSpecOut(BaseModel):
    name: str
    default: Any
    kind: Literal["float", "int", "choice"]
    minimum: float | None
    maximum: float | None
    choices: list[str]
    help: str


class ChannelValuesOut(BaseModel):
    channel: int
    layer: str
    values: list[float]
