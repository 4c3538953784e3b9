"""What Explore shows for a camera frame: the frame's predictions and the selected layer's grid, updated in
place, and the acknowledgement that lets the page send its next frame (static/camera.js sends one at a
time, dropping the frames that come while one is in flight).

A frame takes one of two ways:
- the live way, :func:`live_frame` behind the dashboard's ``POST /camera/frame`` route: the answer is JSON
  that camera.js draws into the components already on the page (the bar chart through Plotly, the tiles
  of the grid rewritten in place). No Dash callback runs, so the browser is spared dash-renderer's pass
  over the page's components per frame, which was most of a frame's cost (docs/BENCHMARKS.md);
- the Dash way, :func:`show_frame` behind the ``camera-frame`` store's callback, whenever what is on the
  page must change shape: the first frame, a new model or layer, an error to show or clear, and the last
  frame when the camera stops (so that Dash's own state ends equal to what is shown).
Both ask the API the same way (:func:`ask`).
"""

from __future__ import annotations

import time
from typing import Any

from dash import no_update

from dashboard.api_client import ApiError, browser_url, get_client
from dashboard.components.common import error_alert
from dashboard.components.filter_grid import filter_grid, grid_summary, grid_tiles, sort_order
from dashboard.figures.predictions import figure_parts, figure_patch
from dashboard.views.common import is_untrained, precision_of
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


def ask(data: bytes, model: str, untrained: bool, layer: str | None, precision: str) -> dict[str, Any]:
    """The API's answer to one frame: with a layer, one activations request whose ``top_k`` predictions
    come from the same forward; without, a predict request. Raises ApiError."""
    client = get_client()
    if layer:
        return client.activations(
            model, data, layer, filename="frame.jpg", untrained=untrained, precision=precision, top_k=TOP_K
        )
    return client.predict(model, data, filename="frame.jpg", untrained=untrained, precision=precision)


CAPTION = "camera frame as {model} sees it"


def show_frame(
    frame: dict[str, Any] | None,
    model: str | None,
    untrained: bool,
    layer: str | None,
    precision: str,
    sort: str,
    shown: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """The Dash way: (predictions figure patch, top-1 line, input preview, caption, filter grid, grid
    summary, grid error, error, acknowledgement) for one frame; on bad input or an API error only the
    error and the acknowledgement change.

    Every output the browser applies costs it a pass over the page's components, so a frame sends only
    what changes: the predictions as a :func:`figure_patch` (the template stays in the browser), and no
    update for the texts in ``shown`` (the page's current ``caption``, ``summary``, ``grid_error`` and
    ``error``) that are already on screen."""
    started = time.perf_counter()
    keep = (no_update,) * 7
    if not frame:
        return (*keep, no_update, no_update)
    if not model:
        message = "Pick a model first."
        return (*keep, error_alert(message, "Camera"), ack(frame, started, message))
    try:
        result = ask(frame_bytes(frame), model, untrained, layer, precision)
    except (ValueError, ApiError) as err:
        return (*keep, error_alert(str(err), "Camera frame"), ack(frame, started, str(err)))
    grid, summary = no_update, no_update
    if layer:
        grid, summary = filter_grid(result, sort_order(result["channels"], sort)), grid_summary(result)
    figure, top1 = prediction_parts(result)
    shown = shown or {}

    def changed(name: str, value: Any) -> Any:
        return no_update if name in shown and shown[name] == value else value

    return (
        figure_patch(figure),
        top1,
        browser_url(result["input_url"]),
        changed("caption", CAPTION.format(model=model)),
        grid,
        changed("summary", summary),
        changed("grid_error", None),
        changed("error", None),
        ack(frame, started),
    )


def live_frame(body: Any) -> tuple[int, dict[str, Any]]:
    """The live way: (HTTP status, JSON answer) for ``POST /camera/frame``, whose body is the
    ``camera-frame`` value plus the page's settings as camera.js reads them from its inputs: ``model``,
    ``untrained`` and ``precision`` (the checklists' values), ``layer`` and ``sort``.

    The answer holds what camera.js draws: the predictions ``figure`` (traces and layout, no template),
    the ``top1`` label and probability, the ``preview`` URL, and with a layer its ``grid`` (``layer`` and
    :func:`grid_tiles`) and ``summary``; with the ``ack`` fields (``seq``, ``ok``, ``error``,
    ``server_ms``) whatever happens. A bad frame or setting is a 400 and an API error keeps its status,
    each with a message the page shows."""
    started = time.perf_counter()
    frame = body if isinstance(body, dict) else {}
    try:
        if not isinstance(body, dict):
            raise ValueError("The camera frame must come as a JSON object.")
        model, layer, sort = body.get("model"), body.get("layer"), body.get("sort") or "index"
        if not model or not isinstance(model, str):
            raise ValueError("Pick a model first.")
        if layer is not None and not isinstance(layer, str):
            raise ValueError("The layer must be a layer's name.")
        untrained, precision = is_untrained(body.get("untrained")), precision_of(body.get("precision"))
        result = ask(frame_bytes(frame), model, untrained, layer, precision)
    except ValueError as err:
        return 400, ack(frame, started, str(err))
    except ApiError as err:
        return err.status or 502, ack(frame, started, str(err))
    data, layout = figure_parts(prediction_parts(result)[0])
    top = result["predictions"][0]
    answer: dict[str, Any] = {
        "figure": {"data": data, "layout": layout},
        "top1": {"label": str(top["label"]), "probability": f" {top['probability']:.1%}"},
        "preview": browser_url(result["input_url"]),
        "caption": CAPTION.format(model=model),
        "grid": None,
        "summary": None,
    }
    if layer:
        answer["grid"] = {
            "layer": result["layer"],
            "tiles": grid_tiles(result, sort_order(result["channels"], sort)),
        }
        answer["summary"] = grid_summary(result)
    return 200, {**answer, **ack(frame, started)}
