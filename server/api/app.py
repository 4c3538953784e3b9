"""The FastAPI application: ``create_app(settings)``; ``python -m server`` serves it with uvicorn."""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from server import __version__
from server.api.admission import Admission
from server.api.auth import TokenAuthMiddleware
from server.api.errors import install_error_handlers
from server.api.openapi import multipart_without_nulls
from server.api.routers import (
    artifacts,
    attributions,
    audits,
    checkpoints,
    compare,
    datasets,
    gan,
    health,
    jobs,
    models,
    optvis,
    projections,
    recurrent,
    weights,
)
from server.api.shutdown import Drain, DrainMiddleware
from server.config import Settings, get_settings
from server.services import Services

log = logging.getLogger("convlens")

# One line per resource router; each module exposes `router`.
ROUTERS: list[Any] = [
    health.router,
    models.router,
    jobs.router,
    artifacts.router,
    attributions.router,
    optvis.router,
    datasets.router,
    projections.router,
    audits.router,
    checkpoints.router,
    compare.router,
    gan.router,
    recurrent.router,
    weights.router,
]


def _preload(app: FastAPI) -> None:
    services: Services = app.state.services
    s = services.settings
    compiler_imported = services.explore.compiler.prepare(services.zoo.device)  # in the background, meanwhile
    try:
        lm = services.zoo.load(s.default_model)
        services.explore.warm(lm)  # compiles predict in the background; /readyz does not wait for that
        lm.layers()  # trace once so the first layers request is instant
        # ready once torch's compiler is imported too (a few seconds, overlapping the load): a restart
        # with a warm compile cache then serves compiled answers within seconds of readiness
        compiler_imported.wait(timeout=60)
        app.state.ready.set()
        log.info("default model %s ready on %s", s.default_model, lm.device)
    except Exception as exc:  # reported by /readyz
        app.state.ready_error = f"default model '{s.default_model}' failed to load: {exc}"
        log.exception("preload failed")
        return
    try:  # the built-in datasets too, so that the first listing does not build them (~10 s)
        services.datasets.ensure_builtins()
    except Exception:
        log.exception("building the built-in datasets failed")


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """The API over ``services`` (by default built from ``settings``, by default the environment's)."""
    services = services or Services.from_settings(settings or get_settings())
    settings = services.settings
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    if settings.gil_switch_ms:
        sys.setswitchinterval(settings.gil_switch_ms / 1000)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        drain.restore()
        drain.install_signal_handlers()
        if settings.preload_default_model:
            threading.Thread(target=_preload, args=(app,), daemon=True, name="convlens-preload").start()
        else:
            app.state.ready.set()
        yield
        drain.begin()  # also when the server stops without a signal
        services.shutdown()

    app = FastAPI(
        title="ConvLens API",
        version=__version__,
        description="Look inside trained CNNs: activations, deconvolution, DeepVis, projections and neuron audits.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.admission = Admission(
        settings.max_queue, settings.model_concurrency, settings.retry_after_seconds
    )
    app.state.drain = drain = Drain(services, settings.retry_after_seconds)
    app.state.ready = threading.Event()
    app.state.ready_error = None

    install_error_handlers(app)
    app.add_middleware(DrainMiddleware, drain=drain)  # innermost: CORS and auth wrap its 503s
    if settings.api_token:  # added before CORS so that CORS wraps it: 401s carry CORS headers too
        app.add_middleware(TokenAuthMiddleware, token=settings.api_token)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.resolved_cors_origins,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["*"],
    )
    for router in ROUTERS:
        app.include_router(router)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = multipart_without_nulls(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
