"""Task ``weight_pull``: job params -> :meth:`server.weight_pulls.WeightPullService.run`."""

from __future__ import annotations

from typing import Any

from server.jobs import JobContext


def weight_pull(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.weight_pulls.run(params, ctx.report)
