"""Explore views against the real API app (in-process), without a browser: digits_cnn keeps them fast."""

from __future__ import annotations

import re

from dash import dcc, no_update

from dashboard.components.filter_grid import sort_order
from dashboard.images import image_bytes, sample_png
from dashboard.views import explore as view
from tests.dashboard.trees import data_url, find, texts


def test_models_load_with_the_link_model_or_the_default(api):
    options, value, message = view.load_models({"model": "digits_cnn"})
    assert value == "digits_cnn" and message is None
    assert {"efficientnet_lite0", "digits_cnn"} <= {o["value"] for o in options}
    options, value, message = view.load_models({"model": "no_such_net"})
    assert value == "efficientnet_lite0"
    assert "Unknown model 'no_such_net'" in texts(message)


def test_model_card_layers_and_default_layer(api):
    card, layers_data, layer = view.show_model("digits_cnn", False, None)
    assert layer == "features.3"  # the card's default layer
    assert "trained" in texts(card) and "UNTRAINED" not in texts(card)
    assert [x["name"] for x in layers_data["layers"]][:2] == ["features", "features.0"]
    # a layer this model has is kept when the model is shown again
    assert view.show_model("digits_cnn", False, "features.0")[2] == "features.0"


def test_picking_a_layer_only_accepts_layers_of_the_shown_model(api):
    layers_data = view.show_model("digits_cnn", False, None)[1]
    assert view.pick_layer("features.0", layers_data) == "features.0"
    assert view.pick_layer("blocks.3", layers_data) is no_update
    assert view.pick_layer(None, None) is no_update


def test_untrained_model_gets_a_clear_badge_and_unavailable_weights_a_readable_hint(api):
    card, layers_data, _ = view.show_model("squeezenet1_1", True, None)
    badge = next(find(card, lambda c: getattr(c, "id", None) == "model-weights-badge"))
    assert "UNTRAINED" in badge.children and "danger" in badge.className
    assert layers_data["untrained"] is True
    card, layers_data, layer = view.show_model("squeezenet1_1", False, None)
    assert layers_data is None and layer is None
    alert = next(find(card, lambda c: getattr(c, "role", None) == "alert"))
    assert "Weights unavailable" in texts(alert) and "random weights (untrained)" in texts(alert)


def test_a_text_file_named_png_is_rejected_with_the_apis_message(api, settings):
    image_id, status = view.accept_upload(
        data_url(b"this is not an image\n"), "notes.png", "digits_cnn", False
    )
    assert image_id is no_update
    assert status.role == "alert"
    assert "Cannot use 'notes.png'" in texts(status) and "not a recognised image" in texts(status)
    assert not (settings.data_dir / "dashboard" / "uploads").exists()


def test_a_real_upload_is_kept_and_predicted(api, settings):
    png = sample_png("digit7")
    image_id, status = view.accept_upload(data_url(png), "seven.png", "digits_cnn", False)
    assert image_id.startswith("upload:") and image_bytes(image_id, settings.data_dir) == png
    assert float(status.to_plotly_json()["props"]["data-api-ms"]) > 0
    fig, top1, preview, caption, error = view.show_predictions(image_id, "digits_cnn", False)
    assert error is None and caption.endswith("as digits_cnn sees it")
    assert texts(top1).split()[1] == "7"
    assert preview.startswith("/api-artifacts/") and preview.endswith("/input.png")
    assert fig.data[0].y[-1] == "7"


def test_activations_grid_and_detail_for_a_digit(api):
    acts, error = view.load_activations("sample:digit3", "digits_cnn", False, "features.3")
    assert error is None
    n = acts["shape"][0]
    assert len(acts["channels"]) == n and acts["api_ms"] > 0
    grid, summary, timing = view.render_grid(acts, "max")
    tiles = re.findall(r'<button class="cl-tile[^"]*" data-index="(\d+)"', grid.children)
    assert len(tiles) == n
    maxes = {c["index"]: c["max"] for c in acts["channels"]}
    shown = [int(i) for i in tiles]
    assert [maxes[i] for i in shown] == sorted(maxes.values(), reverse=True)
    assert f"{n} channels" in summary
    assert "activations API call" in texts(timing)

    selection = view.select_filter("tile-click", 2, acts, None, "index", 4, 1)
    assert selection == {"layer": "features.3", "index": 2, "prev": 4, "next": 1}
    after_next = view.select_filter("filter-next", None, acts, selection, "index", 4, 2)
    assert after_next == {"layer": "features.3", "index": 3, "prev": 4, "next": 2}
    # two quick 'prev' presses whose second request still carries the old selection: two steps back
    assert view.select_filter("filter-prev", None, acts, after_next, "index", 6, 2)["index"] == 1
    wrapped = view.select_filter(
        "filter-prev", None, acts, {"layer": "features.3", "index": 0}, "index", 1, 0
    )
    assert wrapped["index"] == n - 1
    by_max = sort_order(acts["channels"], "max")
    stepped = view.select_filter(
        "filter-next", None, acts, {"layer": "features.3", "index": by_max[0]}, "max", 0, 1
    )
    assert stepped["index"] == by_max[1]  # neighbours in the grid's display order
    assert view.select_filter("filter-close", None, acts, selection, "index") is None
    assert view.select_filter("tile-click", n, acts, selection, "index") is no_update  # no such tile
    assert view.select_filter("activations-data", None, acts, selection, "index") is no_update  # kept
    assert (
        view.select_filter("activations-data", None, acts, {"layer": "features.0", "index": 2}, "index")
        is None
    )

    layers = view.show_model("digits_cnn", False, None)[1]
    hidden, title, input_src, map_src, stats, weights = view.show_detail(
        selection, acts, "digits_cnn", False, layers
    )
    assert hidden is False
    assert "features.3 · filter 2" in texts(title)
    link = next(find(title, lambda c: getattr(c, "id", None) == "detail-neuron-link"))
    assert link.href == "/neuron/digits_cnn/features.3/2"
    assert map_src.endswith("/channel_2.png") and input_src.endswith("/input.png")
    assert "2 of" in texts(stats)
    graph = next(find(weights, lambda c: isinstance(c, dcc.Graph)))
    assert graph.figure.data  # the weights of the conv that produces features.3's channels


def test_detail_stays_closed_for_a_filter_of_another_layer(api):
    acts, _ = view.load_activations("sample:digit3", "digits_cnn", False, "features.3")
    assert view.show_detail({"layer": "features.0", "index": 1}, acts, "digits_cnn", False, None)[0] is True
    assert (
        view.show_detail({"layer": "features.3", "index": 10_000}, acts, "digits_cnn", False, None)[0] is True
    )


def test_api_errors_become_messages_not_exceptions(api):
    acts, error = view.load_activations("sample:digit3", "digits_cnn", False, "features.99")
    assert acts is None and error.role == "alert"
    assert "features.99" in texts(error) and "Did you mean" in texts(error)
    acts, error = view.load_activations("upload:" + "0" * 64, "digits_cnn", False, "features.3")
    assert acts is None and "upload it again" in texts(error)
    _fig, top1, _, _, error = view.show_predictions("sample:digit3", "no_such_net", False)
    assert top1 is None and "Unknown model" in texts(error)


def test_query_follows_the_view():
    q = view.explore_query(
        "digits_cnn", False, "sample:digit3", "features.3", {"layer": "features.3", "index": 4}
    )
    assert q == "?model=digits_cnn&image=sample:digit3&layer=features.3&filter=4"
    q = view.explore_query("digits_cnn", True, None, "features.0", {"layer": "features.3", "index": 4})
    assert q == "?model=digits_cnn&layer=features.0&untrained=1"


def test_an_image_comes_from_a_gallery_click_or_an_upload(api):
    gallery_item = {"type": "gallery-item", "image": "sample:digit3"}
    assert view.choose_image(gallery_item, True, None, None, "digits_cnn", False) == (
        "sample:digit3",
        None,
        no_update,
    )
    # the gallery was redrawn, not clicked; or nothing that chooses an image fired
    assert view.choose_image(gallery_item, False, None, None, "digits_cnn", False) == (no_update,) * 3
    assert view.choose_image(None, False, None, None, "digits_cnn", False) == (no_update,) * 3
    image_id, status, cleared = view.choose_image(
        "image-upload", False, data_url(sample_png("digit7")), "seven.png", "digits_cnn", False
    )
    assert image_id.startswith("upload:") and "Using seven.png" in texts(status)
    assert cleared is None  # so that the same file can be dropped again


def test_the_layer_browser_needs_a_model():
    assert "Pick a model" in texts(view.layers_view(None, None))
    layers = {"layers": [{"name": "conv", "kind": "conv", "output_shape": [4, 2, 2], "channels": 4}]}
    browser = view.layers_view(layers, "conv")
    (selected,) = find(browser, lambda c: "is-selected" in (getattr(c, "className", None) or ""))
    assert selected.to_plotly_json()["props"]["data-layer"] == "conv" and "conv" in texts(selected)


def test_no_query_until_a_model_is_shown():
    assert view.explore_query(None, False, "sample:digit3", None, None) is no_update


def test_a_generator_is_explored_from_the_latent_of_a_seed(api):
    """dcgan_digits_generator takes a latent, not an image: the images give way to a seed box, the
    'predictions' are the generated digit and the discriminator's score, and the filter grid is the
    generator's layer for that latent."""
    _card, layers_data, layer = view.show_model("dcgan_digits_generator", False, None)
    assert layers_data["kind"] == "generator" and layers_data["gan"] == "dcgan_digits"
    images_hidden, latent_hidden, image_id = view.input_kind(layers_data, "sample:digit3", 7)
    assert (images_hidden, latent_hidden, image_id) == (True, False, "latent:7")
    assert view.input_kind(layers_data, "latent:3", 7)[2] is no_update  # a link's seed is kept

    figure, top1, preview, caption, error = view.show_predictions("latent:7", "dcgan_digits_generator", False)
    assert error is None and preview and "seed 7" in caption
    assert set(figure.data[0].y) == {"real", "fake"} and abs(sum(figure.data[0].x) - 1) < 1e-6
    generated = api.gan_generate("dcgan_digits", {"seed": 7, "n": 1})
    assert f"{generated['images'][0]['d_score']:.2f}" in texts(top1)  # the GAN page's image 0 of seed 7

    acts, error = view.load_activations("latent:7", "dcgan_digits_generator", False, layer)
    assert error is None and acts["latent_seed"] == 7 and acts["input_url"] is None
    other, _ = view.load_activations("latent:8", "dcgan_digits_generator", False, layer)
    assert [c["mean"] for c in other["channels"]] != [c["mean"] for c in acts["channels"]]
    hidden, _title, input_src, map_src, _stats, _w = view.show_detail(
        {"layer": layer, "index": 0}, acts, "dcgan_digits_generator", False, layers_data
    )
    assert hidden is False and input_src is None and map_src.endswith("/channel_0.png")

    # back to an image model: the latent id is dropped, the images come back
    digits = view.show_model("digits_cnn", False, None)[1]
    assert view.input_kind(digits, "latent:7", 7) == (False, True, None)
    assert view.input_kind(digits, "sample:digit3", 7)[2] is no_update


def test_latent_seeds_are_checked_and_stepped():
    assert view.choose_latent("latent-seed", 12, "latent:3") == ("latent:12", no_update, None)
    assert view.choose_latent("latent-next", 12, "latent:3") == ("latent:4", 4, None)
    assert view.choose_latent("latent-next", None, "latent:4294967295") == ("latent:0", 0, None)
    for bad in (None, -1, 2**32, 1.5):
        image_id, value, status = view.choose_latent("latent-seed", bad, "latent:3")
        assert image_id is no_update and value is no_update and "whole number" in texts(status)
    assert view.load_activations("latent:1", "digits_cnn", False, "features.3")[1] is not None


def test_fast_precision_is_asked_for_and_badged(api):
    """The 'fast precision (bf16)' toggle: predictions and the grid come from precision=fast and say so
    with a badge; exact answers carry none."""
    import torch

    from server.engine.inference import fast_precision

    _fig, top1, *_ = view.show_predictions("sample:chelsea", "efficientnet_lite0", False, "fast")
    _fig_e, top1_exact, *_ = view.show_predictions("sample:chelsea", "efficientnet_lite0", False)
    assert "fast · bf16" not in texts(top1_exact)
    acts, error = view.load_activations("sample:digit3", "digits_cnn", False, "features.3", "fast")
    assert error is None
    _grid, _summary, timing = view.render_grid(acts, "index")
    if fast_precision(torch.device("cpu")):
        assert acts["precision"].startswith("fast")
        assert "fast · bf16" in texts(top1) and "fast · bf16" in texts(timing)
    else:
        assert acts["precision"] == "exact (no bf16 on this device)" and "fast · bf16" not in texts(timing)
