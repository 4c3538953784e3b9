"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.api.schemas.health import HealthOut, ReadyOut
from server.redact import redact

router = APIRouter(tags=["health"])


# async: answered on the event loop itself, never queued behind model work in the thread pool
@router.get("/healthz", response_model=HealthOut)
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "still loading the default model, or shutting down"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Ready once the default model is loaded (503 until then, with the reason)."""
    state = request.app.state
    if state.drain.draining:
        return JSONResponse(
            {"status": "shutting down", "detail": "the server is shutting down"}, status_code=503
        )
    if state.ready.is_set():
        return JSONResponse(
            {
                "status": "ready",
                "default_model": state.services.settings.default_model,
                "device": str(state.services.zoo.device),
            }
        )
    return JSONResponse(
        {
            "status": "loading",
            "detail": redact(state.ready_error, state.services.settings)
            if state.ready_error
            else "loading the default model",
        },
        status_code=503,
    )
