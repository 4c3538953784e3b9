"""Task ``compare_cka``: job params -> :meth:`server.compare.CompareService.cka` (layer CKA of two sides)."""

from __future__ import annotations

from typing import Any

from server.jobs import JobContext


def cka(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The CKA between the layers of the job's two models or checkpoints over its dataset."""
    return ctx.services.compare.cka(params, ctx.report)
