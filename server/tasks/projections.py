"""Tasks ``projection`` (features -> 2-D projection with streamed frames -> purity) and ``features``."""

from __future__ import annotations

from typing import Any

from server.jobs import JobContext


def projection(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """See :meth:`server.projections.ProjectionService.run`; live t-SNE changes come from ``ctx.control()``."""
    return ctx.services.projections.run(ctx, params, key=params.get("result_key"))


def features(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Extract (or find cached) features of a (model, layer, dataset) triple, with progress."""
    return ctx.services.projections.extract(params, ctx.report)
