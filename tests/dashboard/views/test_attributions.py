"""Filter insights views against the real API app (in-process): maps side by side, DeepVis and top-9 jobs."""

from __future__ import annotations

import time

import pytest
from dash import no_update

from dashboard.components.attributions import METHOD_TITLES
from dashboard.images import gallery
from dashboard.views import attributions as view
from dashboard.views import explore
from tests.dashboard.trees import find, texts


@pytest.fixture
def digits_view(api):
    """A digits sample, its activations at features.3, selected filter 5."""
    image_id = next(s.id for s in gallery() if s.group == "digit")
    acts, err = explore.load_activations(image_id, "digits_cnn", False, "features.3")
    assert err is None, texts(err)
    return image_id, acts, {"layer": "features.3", "index": 5}


def test_four_maps_side_by_side(digits_view):
    image_id, acts, selection = digits_view
    row, err = view.show_attributions(selection, acts, image_id, "digits_cnn", False, "max")
    assert err is None, texts(err)
    imgs = list(find(row, lambda c: getattr(c, "id", "") and str(c.id).startswith("attr-img-")))
    assert [i.id for i in imgs] == [f"attr-img-{m}" for m in METHOD_TITLES]
    assert all(i.src.startswith("/api-artifacts/") for i in imgs)
    assert "class" in texts(row) and "from (" in texts(row)


def test_no_selection_shows_nothing_and_bad_state_is_readable(digits_view):
    image_id, acts, selection = digits_view
    assert view.show_attributions(None, acts, image_id, "digits_cnn", False, "max") == (None, None)
    stale = {"layer": "features.0", "index": 5}  # a selection from another layer
    assert view.show_attributions(stale, acts, image_id, "digits_cnn", False, "max") == (None, None)
    _row, err = view.show_attributions(selection, acts, image_id, "no_such_model", False, "max")
    assert "Unknown model" in texts(err)


def test_deepvis_runs_with_live_frames_and_cancels(digits_view):
    _image_id, acts, selection = digits_view
    store, poll_off, cancel_off, status, _ = view.start_deepvis(
        selection, acts, "digits_cnn", False, "deepvis", 24, 0
    )
    assert store and not poll_off and not cancel_off and "features.3" in status
    deadline = time.monotonic() + 60
    src = None
    while time.monotonic() < deadline:
        new_src, progress, status, done, _cancel_off, store, verdict = view.poll_deepvis(store)
        assert 0.0 <= float(progress) <= 1.0
        if new_src is not no_update:
            src = new_src
        if done:
            break
        time.sleep(0.1)
    assert done and status.startswith("Done"), status
    assert src and src.startswith("/api-artifacts/") and src.endswith("image.png")
    assert verdict is None  # a filter image gets no second opinion
    # A long run is cancelled from the panel.
    store, *_ = view.start_deepvis(selection, acts, "digits_cnn", False, "deepvis", 4000, 1)
    assert view.cancel_deepvis(store) == "Cancelling…"
    while time.monotonic() < deadline:
        *_, status, done, _c, store, _verdict = view.poll_deepvis(store)
        if done:
            break
        time.sleep(0.1)
    assert status == "Cancelled."


def test_deepvis_bad_input_is_readable(digits_view):
    _image_id, acts, selection = digits_view
    out = view.start_deepvis(selection, acts, "digits_cnn", False, "deepvis", 0, 0)
    assert out[0] is no_update and "steps" in out[3]
    out = view.start_deepvis(selection, acts, "digits_cnn", False, "deepvis", "many", 0)
    assert "whole numbers" in out[3]


def test_deepvis_class_target_needs_no_filter_and_bad_class_is_readable(digits_view):
    store, poll_off, _c, status, _ = view.start_deepvis(
        None, None, "digits_cnn", False, "deepvis", 4, 0, "class", 3
    )
    assert store and not poll_off and "class 3" in status
    out = view.start_deepvis(None, None, "digits_cnn", False, "deepvis", 4, 0, "class", "goldfish")
    assert out[0] is no_update and "whole number" in out[3]
    out = view.start_deepvis(None, None, "digits_cnn", False, "deepvis", 4, 0, "class", 10)
    assert out[0] is no_update and "out of range" in out[3]  # the API's message, shown
    out = view.start_deepvis(None, None, "digits_cnn", False, "deepvis", 4, 0, "filter", None)
    assert "Open a filter first." in out[3]


def test_top_images_panel(digits_view):
    _image_id, acts, selection = digits_view
    options, err = view.dataset_options()
    assert err is None and any(o["value"] == "digits" for o in options)
    out = view.start_top_images(selection, acts, "digits_cnn", False, None)
    assert out[2] == "Pick a dataset first."
    store, poll_off, status, _grid = view.start_top_images(selection, acts, "digits_cnn", False, "digits")
    assert store and not poll_off and "1797" in status
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status, grid, done = view.poll_top_images(store)
        if done:
            break
        time.sleep(0.2)
    assert done and status.startswith("The 9 images"), status
    imgs = list(find(grid, lambda c: getattr(c, "src", None)))
    assert len(imgs) == 18 and all(i.src.startswith("/api-artifacts/") for i in imgs)
