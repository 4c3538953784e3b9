"""Map core errors to HTTP statuses with readable JSON bodies: ``{"detail": message, "error": type}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from server.cache_budget import DISK_FULL, disk_full_error
from server.errors import ConvLensError
from server.redact import redact

log = logging.getLogger(__name__)


def allowed_methods(req: Request) -> list[str]:
    """Every method some route of the app answers at ``req``'s path (one route per method in FastAPI)."""
    scope = {**req.scope, "method": "GET"}
    methods: set[str] = set()
    for route in req.app.router.routes:
        match, _child = route.matches(scope)
        if match != Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
    return sorted(methods)


def _readable_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "form"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


def _public(req: Request, message: str) -> str:
    services = getattr(req.app.state, "services", None)
    return redact(message, services.settings if services is not None else None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ConvLensError)
    async def convlens_error(_req: Request, exc: ConvLensError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code,
            content={"detail": _public(_req, exc.message), "error": type(exc).__name__},
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "detail": _readable_validation(exc),
                "error": "ValidationError",
                # a validator's ValueError travels in ctx; jsonable_encoder turns it into its message
                "errors": jsonable_encoder(exc.errors(), custom_encoder={Exception: str}),
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        detail = _public(_req, str(exc.detail))
        if exc.status_code == 405:  # Starlette names only the first matching route's methods
            allowed = allowed_methods(_req)
            headers["Allow"] = ", ".join(allowed)
            detail = f"Method {_req.method} is not allowed here; use {' or '.join(allowed)}."
        return JSONResponse(
            status_code=exc.status_code, content={"detail": detail, "error": "HTTPError"}, headers=headers
        )

    @app.exception_handler(Exception)
    async def unexpected(_req: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:  # a write outside the cache budget's
            return await convlens_error(_req, disk_full_error(exc))
        log.exception("unhandled error")  # the details (message, stack trace) go to the log only
        return JSONResponse(
            status_code=500,
            content={
                "detail": f"Internal error ({type(exc).__name__}); the server log has the details.",
                "error": "InternalError",
            },
        )
