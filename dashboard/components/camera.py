"""Explore's camera source: the button, the live video, the frame store and the answer text that static/camera.js drives."""

from __future__ import annotations

from dash import dcc, html


def camera_controls() -> html.Div:
    """The camera's parts; ``camera-stats`` is written by static/camera.js only (frames per second, latency,
    frames dropped while one was in flight), never by a callback."""
    return html.Div(
        [
            html.Button("Start camera", id="camera-toggle", n_clicks=0, className="cl-btn"),
            html.Span(id="camera-stats", className="cl-caption", **{"aria-live": "polite"}),
            html.Video(
                id="camera-video", autoPlay=True, muted=True, hidden=True, className="cl-camera-video"
            ),
            # the page's model, layer, checklists and sort order, kept where static/camera.js reads them
            dcc.Store(id="camera-settings"),
            dcc.Store(id="camera-frame"),  # {"seq", "jpeg"}: set by static/camera.js, one frame in flight
            # the frame's answer is shown: {"seq", "ok", "error", "server_ms"} as JSON text, which
            # static/camera.js watches (a DOM observer, not a second callback per frame)
            html.Div(id="camera-done", hidden=True),
        ],
        className="cl-camera",
    )
