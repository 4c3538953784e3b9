"""A camera frame in Explore: its predictions and the selected layer's grid from the real API app, and
an acknowledgement for every frame, bad ones included (the page sends its next frame only after it)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from dash import no_update
from PIL import Image

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


def test_a_frame_updates_the_predictions_and_the_grid(api):
    figure, top1, preview, caption, grid, summary, grid_error, error, ack = show_frame(
        jpeg_frame(7), "digits_cnn", False, "features.3", "exact", "index"
    )
    assert error is None and ack["seq"] == 7 and ack["ok"] is True and ack["server_ms"] > 0
    assert figure.data and "Top-1" in str(top1) and preview.endswith("/input.png") and "frame 7" in caption
    assert grid_error is None
    assert 'data-layer="features.3"' in grid.children and grid.children.count("cl-tile") == 32
    assert summary is not None


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
