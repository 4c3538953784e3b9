"""Tasks ``deepvis`` and ``top_images``: job params -> :mod:`server.deepvis` / :mod:`server.top_images`."""

from __future__ import annotations

from typing import Any

from server.jobs import JobContext


def deepvis(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Every step reports progress (and raises JobCancelled once cancelled); a step with an image, a frame."""

    def sink(progress: float, message: str, frame: dict[str, Any] | None) -> None:
        ctx.report(progress, message, frame=frame, force=frame is not None)

    return ctx.services.deepvis.render(params, sink)


def top_images(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.top_images.run(params, ctx.report)
