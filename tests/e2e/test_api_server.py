"""The API as a real uvicorn process over HTTP, started exactly as `make run` starts it."""

import httpx
import pytest

from tests.processes import api_process

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    with api_process(tmp / "data", tmp / "logs") as url:
        yield url


def test_health_and_docs(api_url):
    assert httpx.get(f"{api_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{api_url}/readyz").json()["status"] == "ready"
    spec = httpx.get(f"{api_url}/openapi.json").json()
    assert "/api/v1/models/{model_id}/activations" in spec["paths"]
    assert httpx.get(f"{api_url}/docs").status_code == 200


@pytest.mark.parametrize(
    ("image", "expected"),
    [("chelsea", {"tabby", "tiger cat", "Egyptian cat"}), ("coffee", {"espresso"})],
)
def test_real_photos_get_the_right_top1(api_url, image, expected, request):
    data = request.getfixturevalue(f"{image}_jpeg")
    r = httpx.post(
        f"{api_url}/api/v1/models/efficientnet_lite0/predict",
        files={"image": (f"{image}.jpg", data)},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["label"] in expected


def test_bad_upload_then_still_healthy(api_url):
    r = httpx.post(
        f"{api_url}/api/v1/models/efficientnet_lite0/predict", files={"image": ("notes.png", b"plain text")}
    )
    assert r.status_code == 415 and "not a recognised image" in r.json()["detail"]
    assert httpx.get(f"{api_url}/healthz").status_code == 200
