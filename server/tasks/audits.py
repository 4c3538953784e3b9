"""Tasks ``audit`` and ``checkpoint_compare``: job params -> :mod:`server.audits` / :mod:`server.checkpoints`."""

from __future__ import annotations

from typing import Any

from server.audits import AuditRequest
from server.jobs import JobContext


def audit(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.audits.run(AuditRequest.from_params(params), ctx.report)


def checkpoint_compare(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.checkpoints.compare(params, ctx.report)
