"""Compare page views against the real API app (in-process): the presets, each side's pickers, two checkpoints
of digits_cnn with their changed filters, and the CKA job of two models drawn as a map."""

from __future__ import annotations

import time

import plotly.graph_objects as go
import pytest
from dash import dcc, html, no_update

from dashboard.components.compare import CHECKPOINT_WEIGHTS
from dashboard.views import compare as view
from tests.dashboard.trees import find, texts


def test_the_page_lists_image_models_and_starts_on_two_checkpoints(api):
    models, mode, images, datasets, error = view.load_page(None)
    ids = [m["value"] for m in models]
    assert error is None and mode == "checkpoints"
    assert {"digits_cnn", "efficientnet_lite0", "efficientnet_lite1"} <= set(ids)
    assert "dcgan_digits_generator" not in ids  # its input is a latent, not an image
    assert {"sample:digit3", "sample:chelsea"} <= {i["value"] for i in images}
    assert "lfw_subset" in {d["value"] for d in datasets}
    assert view.load_page({"mode": "models"})[1] == "models"
    assert view.load_page({"mode": "nonsense"})[1] == "checkpoints"
    assert view.preset("checkpoints") == ("digits_cnn", "sample:digit3")
    assert view.preset("models") == ("efficientnet_lite0", "sample:chelsea")


def test_side_b_follows_a_for_checkpoints_and_differs_for_two_models():
    options = [{"value": v} for v in ("digits_cnn", "efficientnet_lite0", "efficientnet_lite1")]
    assert view.model_b_for("checkpoints", "digits_cnn", "efficientnet_lite1", options) == (
        "digits_cnn",
        True,
        True,
    )
    assert view.model_b_for("models", "efficientnet_lite0", "digits_cnn", options) == (
        "digits_cnn",
        False,
        False,
    )
    assert (
        view.model_b_for("models", "efficientnet_lite0", "efficientnet_lite0", options)[0]
        == "efficientnet_lite1"
    )
    assert view.model_b_for("models", "efficientnet_lite1", None, options)[0] == "efficientnet_lite0"


def test_each_side_offers_the_models_checkpoints_and_layers(api):
    options, checkpoint, layers, layer = view.side_choices("digits_cnn", "checkpoints", "a")
    assert options[0] == {"label": "zoo weights", "value": CHECKPOINT_WEIGHTS}
    assert {"epoch_01", "final"} <= {o["value"] for o in options}
    assert checkpoint == "epoch_01" and layer == "features.3"
    assert "features.3 · ReLU · 32×8×8" in [o["label"] for o in layers]
    assert view.side_choices("digits_cnn", "checkpoints", "b")[1] == "final"
    lite = view.side_choices("efficientnet_lite1", "models", "b")
    assert [o["value"] for o in lite[0]] == [CHECKPOINT_WEIGHTS] and lite[1] == CHECKPOINT_WEIGHTS
    assert lite[3] == "blocks.3"
    assert view.side_choices(None, "models", "a") == ([], None, [], None)


def test_two_checkpoints_show_both_sides_and_the_filters_that_changed(api):
    side_a, side_b, changed, error = view.run(
        "checkpoints",
        "digits_cnn",
        "epoch_01",
        "features.2",
        "digits_cnn",
        "final",
        "features.5",
        "sample:digit3",
    )
    assert error is None
    assert "digits_cnn:epoch_01" in texts(side_a) and "digits_cnn:final" in texts(side_b)
    assert "top-1: 3" in texts(side_b)
    grids = [g.children for g in find([side_a, side_b], lambda c: isinstance(c, dcc.Markdown))]
    assert 'id="compare-grid-a"' in grids[0] and 'id="compare-grid-b"' in grids[1]
    assert grids[0].count("cl-tile") == 32  # features.2 on both sides: B follows A for checkpoints
    cards = list(find(changed, lambda c: isinstance(c, html.Li)))
    assert len(cards) == 8 and "features.2 · filter" in texts(cards[0])
    maps = [i.src for i in find(cards[0], lambda c: isinstance(c, html.Img))]
    assert len(maps) == 2 and all(src.startswith("/api-artifacts/") for src in maps)
    weights = [g.figure for g in find(cards[0], lambda c: isinstance(c, dcc.Graph))]
    assert [f.layout.title.text.split(":")[0] for f in weights] == ["epoch_01", "final"]


def test_two_models_have_no_changed_filters_and_errors_are_shown(api):
    _a, side_b, changed, error = view.run(
        "models",
        "efficientnet_lite0",
        CHECKPOINT_WEIGHTS,
        "blocks.5",
        "efficientnet_lite1",
        CHECKPOINT_WEIGHTS,
        "blocks.6",
        "sample:chelsea",
    )
    assert error is None and "blocks.6" in texts(side_b)
    assert "pick two checkpoints of one model" in texts(changed)
    *_, error = view.run(
        "checkpoints", "digits_cnn", "final", None, "digits_cnn", "final", None, "sample:digit3"
    )
    assert "Both sides are digits_cnn:final" in texts(error)
    *_, error = view.run(
        "checkpoints", "digits_cnn", None, None, "digits_cnn", None, None, "upload:" + "0" * 64
    )
    assert "upload it again" in texts(error)
    assert view.run("models", None, None, None, None, None, None, None)[0] is no_update


def test_the_cka_of_two_lite_models_is_drawn_as_a_map_with_best_matches(api):
    store, disabled, status, _fig, _best = view.start_cka(
        "efficientnet_lite0", CHECKPOINT_WEIGHTS, "efficientnet_lite1", CHECKPOINT_WEIGHTS, "lfw_subset", 32
    )
    assert store and not disabled and "on 32 images of lfw_subset" in status
    deadline = time.monotonic() + 240
    while True:
        fig, best, disabled, status = view.poll_cka(store)
        if disabled:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.3)
    assert status.startswith("Done: 10 × 10 layers over 32 images")
    assert isinstance(fig, go.Figure) and fig.data[0].type == "heatmap" and fig.data[1].mode == "markers"
    assert fig.data[0].y[0] == "conv_stem" and "efficientnet_lite1" in fig.layout.xaxis.title.text
    assert "conv_stem ↔ conv_stem" in texts(best)
    refused = view.start_cka("efficientnet_lite0", None, "efficientnet_lite0", None, "lfw_subset", 32)
    assert refused[0] is None and "Both sides" in refused[2]
    assert view.poll_cka(None)[2] is True


def test_a_dropped_image_is_checked_kept_and_chosen(api):
    import base64

    from server.config import REPO_ROOT

    data = (REPO_ROOT / "static" / "samples" / "digit7.png").read_bytes()
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    options, image, status = view.upload_image(
        url, "seven.png", "digits_cnn", [{"label": "Digit 3", "value": "sample:digit3"}]
    )
    assert image.startswith("upload:") and options[-1] == {"label": "Uploaded: seven.png", "value": image}
    assert "Using seven.png" in texts(status)
    _a, side_b, _changed, error = view.run(
        "checkpoints", "digits_cnn", "epoch_01", None, "digits_cnn", "final", None, image
    )
    assert error is None and "top-1: 7" in texts(side_b)
    bad = view.upload_image(
        "data:image/png;base64," + base64.b64encode(b"not an image").decode(), "x.png", "digits_cnn", options
    )
    assert bad[:2] == (no_update, no_update) and "Cannot use 'x.png'" in texts(bad[2])


@pytest.mark.parametrize(
    ("dataset", "model", "expected"),
    [
        ("digits", "efficientnet_lite0", "digits"),
        (None, "digits_cnn", "digits"),
        (None, "efficientnet_lite0", "lfw_subset"),
    ],
)
def test_the_cka_dataset_defaults_to_one_that_suits_the_model(dataset, model, expected):
    options = [{"value": v} for v in ("digits", "lfw_subset", "skimage_photos")]
    assert view.default_dataset(dataset, options, model) == expected
