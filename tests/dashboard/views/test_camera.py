"""A camera frame in Explore: its predictions and the selected layer's grid from the real API app, and
an acknowledgement for every frame, bad ones included (the page sends its next frame only after it)."""

from __future__ import annotations

import base64
import copy
import io

import numpy as np
import pytest
from dash import Patch, no_update
from PIL import Image

from dashboard.figures.predictions import figure_patch, predictions_figure
from dashboard.figures.weights import message_figure
from dashboard.views.camera import frame_bytes, show_frame


def jpeg_frame(seq: int = 1, size: int = 64) -> dict:
    rng = np.random.default_rng(seq)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return {"seq": seq, "jpeg": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()}


def test_frame_bytes_takes_jpeg_or_png_data_urls_only():
    assert frame_bytes(jpeg_frame())[:2] == b"\xff\xd8"
    for bad in (None, {}, {"jpeg": "hello"}, {"jpeg": "data:text/html;base64,PGI+"}, {"jpeg": 3}):
        with pytest.raises(ValueError, match="data URL"):
            frame_bytes(bad)
    with pytest.raises(ValueError, match="decoded"):
        frame_bytes({"jpeg": "data:image/jpeg;base64,@@@"})
    with pytest.raises(ValueError, match="MiB"):
        frame_bytes({"jpeg": "data:image/jpeg;base64," + "A" * (3 * 1024 * 1024)})


def apply_patch(figure: dict, patch: Patch) -> dict:
    """What dash-renderer does with a Patch of assignments (the only operation figure_patch uses)."""
    figure = copy.deepcopy(figure)
    for op in patch.to_plotly_json()["operations"]:
        assert op["operation"] == "Assign", op
        *path, last = op["location"]
        node = figure
        for key in path:
            node = node.setdefault(key, {})
        node[last] = op["params"]["value"]
    return figure


def test_a_frame_updates_the_predictions_and_the_grid(api):
    figure, top1, preview, caption, grid, summary, grid_error, error, ack = show_frame(
        jpeg_frame(7), "digits_cnn", False, "features.3", "exact", "index"
    )
    assert error is None and ack["seq"] == 7 and ack["ok"] is True and ack["server_ms"] > 0
    assert isinstance(figure, Patch) and "Top-1" in str(top1) and preview.endswith("/input.png")
    assert caption == "camera frame as digits_cnn sees it"
    assert grid_error is None
    assert 'data-layer="features.3"' in grid.children and grid.children.count("cl-tile") == 32
    assert summary is not None
    # what is already on screen is not sent again
    shown = {"caption": caption, "summary": summary, "grid_error": None, "error": None}
    *_, caption, grid, summary, grid_error, error, ack = show_frame(
        jpeg_frame(8), "digits_cnn", False, "features.3", "exact", "index", shown
    )
    assert (caption, grid_error, error) == (no_update,) * 3
    assert summary is no_update or summary != shown["summary"]  # its value range moves with the frame
    assert grid.children.count("cl-tile") == 32 and ack["seq"] == 8
    old_error = {"props": {"children": "an earlier frame failed"}}
    *_, error, _ack = show_frame(
        jpeg_frame(9), "digits_cnn", False, "features.3", "exact", "index", {"error": old_error}
    )
    assert error is None  # cleared


def test_the_predictions_patch_turns_any_figure_into_the_frames_own():
    """Applied to the placeholder (a message figure) or to another frame's chart, the patch gives the full
    figure but for the template, which the browser keeps."""
    preds = [
        {"label": "tabby", "probability": 0.6, "index": 281},
        {"label": "tiger cat", "probability": 0.3, "index": 282},
    ]
    full = predictions_figure(preds, untrained=True).to_plotly_json()
    want = {k: v for k, v in full["layout"].items() if k != "template"}
    for before in (
        message_figure("Pick a sample or drop an image.", height=120),
        predictions_figure([{"label": "x", "probability": 1.0, "index": 0}] * 5),
    ):
        after = apply_patch(before.to_plotly_json(), figure_patch(predictions_figure(preds, untrained=True)))
        assert after["data"] == full["data"]
        assert after["layout"]["template"] == before.to_plotly_json()["layout"]["template"]
        got = {k: v for k, v in after["layout"].items() if k != "template" and v not in ([], {"text": ""})}
        assert got == want
    # a chart without a title clears the earlier one
    after = apply_patch(full, figure_patch(predictions_figure(preds)))
    assert after["layout"]["title"] == {"text": ""} and after["layout"]["annotations"] == []


def test_without_a_layer_only_the_predictions_change(api):
    *_, grid, summary, _grid_error, error, ack = show_frame(
        jpeg_frame(), "digits_cnn", False, None, "exact", "index"
    )
    assert grid is no_update and summary is no_update and error is None and ack["ok"]


def test_bad_frames_and_api_errors_are_shown_and_acknowledged(api):
    *keep, error, ack = show_frame(
        {"seq": 3, "jpeg": "nope"}, "digits_cnn", False, "features.3", "exact", "index"
    )
    assert keep == [no_update] * 7 and "data URL" in str(error) and ack == {**ack, "seq": 3, "ok": False}
    *keep, error, ack = show_frame(jpeg_frame(4), "no_such_model", False, "features.3", "exact", "index")
    assert keep == [no_update] * 7 and "no_such_model" in str(error) and ack["seq"] == 4 and not ack["ok"]
    *keep, error, ack = show_frame(jpeg_frame(5), None, False, "features.3", "exact", "index")
    assert "Pick a model" in str(error) and ack["error"] == "Pick a model first."
    assert show_frame(None, "digits_cnn", False, None, "exact", "index") == (no_update,) * 9
