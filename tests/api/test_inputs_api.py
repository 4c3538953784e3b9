"""Every bad input gets its status and a readable message, and the server stays healthy."""

import numpy as np
import pytest
from PIL import Image

from server.config import REPO_ROOT, Settings
from tests.conftest import encode


def _post(client, data: bytes, name="x.png", layer=None):
    if layer is None:
        return client.post("/api/v1/models/digits_cnn/predict", files={"image": (name, data)})
    return client.post(
        "/api/v1/models/digits_cnn/activations", files={"image": (name, data)}, data={"layer": layer}
    )


def _png(w=16, h=16) -> bytes:
    return encode(np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("case", "status", "needle"),
    [
        ("text_as_png", 415, "not a recognised image"),
        ("empty", 415, "empty"),
        ("truncated", 422, "truncated or corrupt"),
        ("bomb", 413, "pixels"),
        ("unknown_layer", 404, "Did you mean: features.4"),
    ],
)
def test_bad_inputs(client, case, status, needle):
    if case == "text_as_png":
        r = _post(client, b"hello, I am text\n" * 10)
    elif case == "empty":
        r = _post(client, b"")
    elif case == "truncated":
        data = _png(64, 64)
        r = _post(client, data[: len(data) // 2])
    elif case == "bomb":
        r = _post(client, encode(Image.new("L", (10_000, 6_000))))
    else:
        r = _post(client, _png(), layer="features.42")
    assert r.status_code == status, r.text
    body = r.json()
    assert needle in body["detail"] and body["error"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert _post(client, _png()).status_code == 200  # still serving


def test_missing_image_field_is_readable(client):
    r = client.post("/api/v1/models/digits_cnn/predict")
    assert r.status_code == 422 and "image: Field required" in r.json()["detail"]


def test_upload_over_the_byte_limit_is_413(tmp_path):
    from fastapi.testclient import TestClient

    from server.api.app import create_app

    s = Settings(
        data_dir=tmp_path, models_dir=REPO_ROOT / "models", preload_default_model=False, max_upload_bytes=1000
    )
    with TestClient(create_app(s)) as c:
        r = _post(c, _png(200, 200))
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200


def test_missing_layer_field_is_422(client):
    r = client.post("/api/v1/models/digits_cnn/activations", files={"image": ("a.png", _png())})
    assert r.status_code == 422 and "layer" in r.json()["detail"]
