"""Tasks ``projection`` (features -> 2-D projection with streamed frames -> purity) and ``features``."""

from __future__ import annotations

from typing import Any

from server.jobs import JobContext, task
from server.projections import ProjectionRequest, service_for


@task("projection")
def run_projection(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """See :meth:`server.projections.ProjectionService.run`; live t-SNE changes come from ``ctx.control()``."""
    return service_for(params.get("data_dir")).run(ctx, params, key=params.get("result_key"))


@task("features")
def extract_dataset_features(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Extract (or find cached) features of a (model, layer, dataset) triple, with progress."""
    service = service_for(params.get("data_dir"))
    req = ProjectionRequest.from_job_params({"method": "pca", **params})
    loaded = service.zoo.load(req.model, req.untrained)
    feats = service.features.features(
        loaded, req.layer, req.dataset, req.pool, req.reduce, progress=lambda f, m: ctx.report(f, m)
    )
    return {
        "model": req.model,
        "untrained": req.untrained,
        "layer": req.layer,
        "dataset": req.dataset,
        "pool": req.pool,
        "reduce": req.reduce,
        "key": feats.key,
        "n": int(feats.features.shape[0]),
        "dim": int(feats.features.shape[1]),
        "from_cache": feats.from_cache,
    }
