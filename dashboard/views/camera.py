"""What Explore shows for a camera frame (static/camera.js sends one at a time, dropping the frames that come
while one is in flight): the frame's predictions and the selected layer's grid, updated in place, and the
acknowledgement that lets the page send its next frame."""

from __future__ import annotations

import time
from typing import Any

from dash import no_update

from dashboard.api_client import ApiError, browser_url, get_client
from dashboard.components.common import error_alert
from dashboard.components.filter_grid import filter_grid, grid_summary, sort_order
from dashboard.figures.predictions import figure_patch
from dashboard.views.explore import decode_upload, prediction_parts

MAX_FRAME_BYTES = 2 * 1024 * 1024  # a 224 px JPEG is ~15 KiB; anything near this is not a camera frame
FRAME_TYPES = ("data:image/jpeg;base64,", "data:image/png;base64,")
TOP_K = 5  # the predictions panel's bars


def frame_bytes(frame: dict[str, Any] | None) -> bytes:
    """The image of a ``camera-frame`` store value ``{"seq", "jpeg": data URL}``; ValueError otherwise."""
    url = (frame or {}).get("jpeg")
    if not isinstance(url, str) or not url.startswith(FRAME_TYPES):
        raise ValueError("The camera frame is not a JPEG or PNG data URL.")
    if len(url) > MAX_FRAME_BYTES * 4 // 3 + 64:
        raise ValueError(f"The camera frame is over {MAX_FRAME_BYTES // 1024 // 1024} MiB.")
    return decode_upload(url)


def ack(frame: dict[str, Any] | None, started: float, error: str | None = None) -> dict[str, Any]:
    """The ``camera-done`` value: which frame was answered, whether it worked, and the dashboard's time."""
    return {
        "seq": (frame or {}).get("seq"),
        "ok": error is None,
        "error": error,
        "server_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def show_frame(
    frame: dict[str, Any] | None,
    model: str | None,
    untrained: bool,
    layer: str | None,
    precision: str,
    sort: str,
    shown: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """(predictions figure patch, top-1 line, input preview, caption, filter grid, grid summary, grid error,
    error, acknowledgement) for one frame; on bad input or an API error only the error and the
    acknowledgement change.

    Every output the browser applies costs it a pass over the page's components, a few milliseconds each
    at camera rate, so a frame sends only what changes: the predictions as a :func:`figure_patch` (the
    template stays in the browser), and no update for the texts in ``shown`` (the page's current
    ``caption``, ``summary``, ``grid_error`` and ``error``) that are already on screen."""
    started = time.perf_counter()
    keep = (no_update,) * 7
    if not frame:
        return (*keep, no_update, no_update)
    if not model:
        message = "Pick a model first."
        return (*keep, error_alert(message, "Camera"), ack(frame, started, message))
    try:
        data = frame_bytes(frame)
        client = get_client()
        grid, summary = no_update, no_update
        if layer:  # one request, one forward: the layer's activations and the predictions
            result = client.activations(
                model,
                data,
                layer,
                filename="frame.jpg",
                untrained=untrained,
                precision=precision,
                top_k=TOP_K,
            )
            grid, summary = filter_grid(result, sort_order(result["channels"], sort)), grid_summary(result)
        else:
            result = client.predict(
                model, data, filename="frame.jpg", untrained=untrained, precision=precision
            )
        figure, top1 = prediction_parts(result)
        preview = browser_url(result["input_url"])
        caption = f"camera frame as {model} sees it"
    except (ValueError, ApiError) as err:
        return (*keep, error_alert(str(err), "Camera frame"), ack(frame, started, str(err)))
    shown = shown or {}

    def changed(name: str, value: Any) -> Any:
        return no_update if name in shown and shown[name] == value else value

    return (
        figure_patch(figure),
        top1,
        preview,
        changed("caption", caption),
        grid,
        changed("summary", summary),
        changed("grid_error", None),
        changed("error", None),
        ack(frame, started),
    )
