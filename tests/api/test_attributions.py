"""POST /api/v1/models/{id}/attributions through the real ASGI app."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from server.engine.attribution import Target, backprop_map
from server.engine.hooks import active_hook_count
from tests.conftest import encode

URL = "/api/v1/models/{}/attributions"


@pytest.fixture(scope="module")
def digit_png() -> bytes:
    from sklearn.datasets import load_digits

    d = load_digits()
    return encode((d.images[0] / 16 * 255).astype(np.uint8))  # a zero, 8x8 grayscale


def post(client, model: str, image: bytes, **form):
    data = {k: str(v) for k, v in form.items()}
    return client.post(URL.format(model), files={"image": ("x.png", image)}, data=data)


def npy(client, url: str) -> np.ndarray:
    r = client.get(url)
    assert r.status_code == 200
    return np.load(io.BytesIO(r.content), allow_pickle=False)


def test_deconvnet_filter_map_matches_the_engine(client, digit_png):
    r = post(
        client, "digits_cnn", digit_png, layer="features.3", channel=5, method="deconvnet", position="max"
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["untrained"] is False and body["target_kind"] == "filter" and body["map_shape"] == [1, 8, 8]
    png = client.get(body["png_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size[0] >= 8
    got = npy(client, body["npy_url"])
    lm = client.app.state.services.zoo.load("digits_cnn")
    x, _ = lm.preprocess(Image.open(io.BytesIO(digit_png)).convert("RGB"))
    want = backprop_map(lm.model, x, Target(layer="features.3", channel=5), "deconvnet").map
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert body["maps"][0]["position"] is not None and len(body["maps"][0]["position"]) == 2
    assert active_hook_count(lm.model) == 0 and torch._C._len_torch_function_stack() == 0


def test_every_method_and_target_kind(client, digit_png):
    maps = {}
    for method in ("deconvnet", "guided_backprop", "gradient"):
        r = post(
            client, "digits_cnn", digit_png, layer="features.3", channel=5, method=method, position="all"
        )
        assert r.status_code == 200, r.text
        maps[method] = npy(client, r.json()["npy_url"])
    assert not np.allclose(maps["deconvnet"], maps["gradient"])
    r = post(client, "digits_cnn", digit_png, method="gradcam", layer="features.3")
    assert r.status_code == 200, r.text
    assert r.json()["map_shape"] == [8, 8] and r.json()["maps"][0]["class_index"] == 0  # a zero
    r = post(client, "digits_cnn", digit_png, method="guided_backprop", class_index=0)
    assert r.status_code == 200 and r.json()["target_kind"] == "class"
    r = post(client, "digits_cnn", digit_png, method="gradient", layer="classifier.1", neuron=7)
    assert r.status_code == 200 and r.json()["target_kind"] == "neuron"


def test_top_k_filters_in_one_request(client, digit_png):
    r = post(client, "digits_cnn", digit_png, layer="features.5", method="guided_backprop", top_k=4)
    assert r.status_code == 200, r.text
    maps = r.json()["maps"]
    assert len(maps) == 4 and len({m["channel"] for m in maps}) == 4
    values = [m["value"] for m in maps]
    assert values == sorted(values, reverse=True)
    assert all(npy(client, m["npy_url"]).shape == (1, 8, 8) for m in maps)


def test_an_unknown_layer_gets_404_naming_the_closest(client, digit_png):
    r = post(client, "digits_cnn", digit_png, layer="features.33", channel=0)
    assert r.status_code == 404, r.text
    assert "Unknown layer 'features.33'" in r.json()["detail"]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"layer": "features.3", "channel": 64}, "Channel 64 is out of range"),
        ({"layer": "features.3", "channel": -1}, "channel"),
        ({"layer": "features.3", "neuron": 64 * 8 * 8}, "Neuron 4096 is out of range"),
        ({"layer": "features.3", "channel": 0, "method": "lrp"}, "method"),
        ({"layer": "features.3", "channel": 0, "position": "middle"}, "position"),
        ({"class_index": 10}, "class_index 10 is out of range"),
        ({"method": "gradcam", "layer": "classifier.1"}, "Grad-CAM needs a layer"),
        ({"method": "gradient"}, "Give a layer"),
        ({"layer": "features.3", "top_k": 0}, "top_k"),
    ],
)
def test_bad_parameters_get_422_with_a_message(client, digit_png, form, message):
    r = post(client, "digits_cnn", digit_png, **form)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]


def test_bad_uploads(client):
    r = client.post(URL.format("digits_cnn"), data={"layer": "features.3", "channel": "0"})
    assert r.status_code == 422 and "image: Field required" in r.json()["detail"]  # the field is required
    r = post(client, "digits_cnn", b"not an image at all", layer="features.3", channel=0)
    assert r.status_code == 415


def test_lite0_guided_backprop_and_gradcam(client, chelsea_jpeg):
    r = post(client, "efficientnet_lite0", chelsea_jpeg, layer="blocks.5", method="gradcam")
    assert r.status_code == 200, r.text
    cam = npy(client, r.json()["npy_url"])
    assert cam.shape == (224, 224) and cam.max() > 0
    label_index = r.json()["maps"][0]["class_index"]
    assert 281 <= label_index <= 287  # a cat class (tabby, tiger cat, Egyptian cat, ...)
    r = post(
        client, "efficientnet_lite0", chelsea_jpeg, layer="blocks.3", channel=7, method="guided_backprop"
    )
    assert r.status_code == 200 and npy(client, r.json()["npy_url"]).shape == (3, 224, 224)
