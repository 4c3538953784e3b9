"""A camera frame in Explore: its predictions and the selected layer's grid from the real API app, and
an acknowledgement for every frame, bad ones included (the page sends its next frame only after it);
the live way (``POST /camera/frame``) answers with what the Dash way shows."""

from __future__ import annotations

import base64
import copy
import io

import numpy as np
import pytest
from dash import Patch, no_update
from PIL import Image

from dashboard.app import create_app
from dashboard.figures.predictions import figure_patch, predictions_figure
from dashboard.figures.weights import message_figure
from dashboard.views.camera import frame_bytes, live_frame, show_frame


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


LIVE = {"model": "digits_cnn", "untrained": [], "layer": "features.3", "precision": [], "sort": "index"}


def test_a_live_frame_answers_what_the_dash_way_shows(api):
    frame = jpeg_frame(11)
    status, live = live_frame({**LIVE, "sort": "mean", **frame})
    assert status == 200 and live["ok"] is True and live["seq"] == 11 and live["error"] is None
    figure, top1, preview, caption, grid, summary, *_ = show_frame(
        frame, "digits_cnn", False, "features.3", "exact", "mean"
    )
    assert live["figure"] == apply_patch({}, figure)  # the figure the Dash way's patch gives, no template
    assert "template" not in live["figure"]["layout"]
    assert live["top1"]["label"] in str(top1) and live["top1"]["probability"].strip() in str(top1)
    assert live["preview"] == preview and live["caption"] == caption and live["summary"] == summary
    # the same tiles in the same order as the Dash way's grid HTML, silent ones marked
    tiles = live["grid"]["tiles"]
    assert live["grid"]["layer"] == "features.3" and len(tiles) == 32
    assert [f'data-index="{t["index"]}"' in grid.children for t in tiles] == [True] * 32
    order = [int(part.split('"')[0]) for part in grid.children.split('data-index="')[1:]]
    assert [t["index"] for t in tiles] == order
    means = [float(t["title"].split("mean ")[1].split(",")[0]) for t in tiles]
    assert means == sorted(means, reverse=True)  # sorted by mean activation, as asked
    assert all("background-image:url(/api-artifacts/" in t["style"] for t in tiles)
    assert grid.children.count("is-silent") == sum(t["silent"] for t in tiles)


def test_a_live_frame_without_a_layer_has_no_grid(api):
    status, live = live_frame({**LIVE, "layer": None, **jpeg_frame(12)})
    assert status == 200 and live["grid"] is None and live["summary"] is None and live["figure"]["data"]


def test_bad_live_frames_get_a_status_and_a_message(api):
    cases = [
        ("not a dict", 400, "JSON object"),
        ({**LIVE, "model": None, **jpeg_frame(1)}, 400, "Pick a model"),
        ({**LIVE, "layer": 3, **jpeg_frame(1)}, 400, "layer"),
        ({**LIVE, "seq": 2, "jpeg": "nope"}, 400, "data URL"),
        ({**LIVE, "model": "no_such_model", **jpeg_frame(3)}, 404, "no_such_model"),
        ({**LIVE, "layer": "no.such.layer", **jpeg_frame(4)}, 404, "no.such.layer"),
    ]
    for body, want_status, want_text in cases:
        status, answer = live_frame(body)
        assert (status, answer["ok"]) == (want_status, False), (
            body if isinstance(body, str) else body.get("model"),
            answer,
        )
        assert want_text in answer["error"]
        if isinstance(body, dict):
            assert answer["seq"] == body["seq"]


def test_the_camera_route_answers_json(api):
    http = create_app().server.test_client()
    answer = http.post("/camera/frame", json={**LIVE, **jpeg_frame(21)})
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.get_json()["seq"] == 21 and len(answer.get_json()["grid"]["tiles"]) == 32
    bad = http.post("/camera/frame", data="<html>", content_type="text/html")
    assert bad.status_code == 400 and "JSON object" in bad.get_json()["error"]
    huge = http.post("/camera/frame", data=b"x" * (5 * 1024 * 1024), content_type="application/json")
    assert huge.status_code == 413 and "too large" in huge.get_json()["error"]
