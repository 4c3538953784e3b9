"""The Dash app: ``create_app(settings)``. A top bar lists every registered page; pages slot in below it.

The browser talks only to this server: API artifacts (PNG maps) are forwarded under ``/api-artifacts/``
and bundled samples are served under ``/samples/``. One origin means no CORS set-up, the API can stay on
a private network next to the dashboard, and an API token (if set) never reaches the browser.
The repository's top-level ``static/`` (``settings.static_dir``) is Dash's assets folder: its
stylesheets and scripts load with every page, and everything in it is served under ``/assets/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import dash
from dash import Dash, dcc, html
from flask import Response, abort, request
from plotly.utils import PlotlyJSONEncoder

from dashboard.api_client import ARTIFACT_PREFIX, ApiError, get_client
from dashboard.images import DIGITS, PHOTOS, UnknownImageError, sample_thumbnail
from dashboard.settings import DashboardSettings, get_settings
from dashboard.views.camera import MAX_FRAME_BYTES, live_frame

HERE = Path(__file__).resolve().parent


def top_bar() -> html.Header:
    # pages with a path template (one filter's page) are reached by links, not from the bar
    pages = sorted(
        (p for p in dash.page_registry.values() if not p.get("path_template")),
        key=lambda p: (p.get("order") or 0, p["name"]),
    )
    return html.Header(
        [
            dcc.Link("ConvLens", href="/", className="cl-brand"),
            html.Nav(
                [dcc.Link(p["name"], href=p["relative_path"], className="cl-nav-link") for p in pages],
                className="cl-nav",
            ),
            html.Span("look inside trained CNNs", className="cl-tagline"),
        ],
        className="cl-topbar",
    )


def shell() -> html.Div:
    return html.Div([top_bar(), html.Main(dash.page_container, className="cl-main")], className="cl-app")


def _register_routes(app: Dash) -> None:
    server = app.server

    @server.get("/api-artifacts/<key>/<name>")
    def api_artifact(key: str, name: str) -> Response:
        try:
            upstream = get_client().artifact(f"{ARTIFACT_PREFIX}{key}/{name}")
        except ApiError as err:
            return Response(str(err), status=err.status or 502, mimetype="text/plain")
        return Response(
            upstream.content,
            mimetype=upstream.headers.get("content-type", "application/octet-stream"),
            headers={"Cache-Control": upstream.headers.get("cache-control", "max-age=3600")},
        )

    @server.post("/camera/frame")
    def camera_frame() -> Response:
        # the camera's live frames (dashboard/views/camera.py): JSON in, JSON out, no Dash callback
        if (request.content_length or 0) > MAX_FRAME_BYTES * 2:
            status, answer = 413, {"ok": False, "error": "The camera frame is too large."}
        else:
            status, answer = live_frame(request.get_json(silent=True))
        return Response(json.dumps(answer, cls=PlotlyJSONEncoder), status=status, mimetype="application/json")

    @server.get("/samples/<name>.png")
    def sample(name: str) -> Response:
        if name not in PHOTOS and name not in DIGITS:
            abort(404)
        try:
            data = sample_thumbnail(name)
        except UnknownImageError:
            abort(404)
        return Response(data, mimetype="image/png", headers={"Cache-Control": "max-age=86400"})


def create_app(settings: DashboardSettings | None = None) -> Dash:
    settings = settings or get_settings()
    import dashboard.callbacks  # noqa: F401  (registers every page's callbacks)

    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(settings.static_dir),
        suppress_callback_exceptions=True,  # page components appear only when their page is shown
        title="ConvLens",
        update_title=None,
    )
    app.layout = shell
    _register_routes(app)
    return app
