"""POST /api/v1/compare (one image, two sides) and POST /api/v1/compare/cka (a job): answers and clear 4xx."""

from __future__ import annotations

import pytest

from server.api.schemas.compare import CkaResultOut, CompareOut
from server.config import REPO_ROOT
from tests.api.test_audits import finished

DIGIT3 = (REPO_ROOT / "static" / "samples" / "digit3.png").read_bytes()


def post_compare(client, image: bytes = DIGIT3, **form):
    return client.post("/api/v1/compare", files={"image": ("digit3.png", image, "image/png")}, data=form)


def test_two_checkpoints_of_digits_cnn_on_a_digit(client):
    r = post_compare(
        client, model_a="digits_cnn", checkpoint_a="epoch_01", checkpoint_b="final", layer_a="features.0"
    )
    assert r.status_code == 200, r.text
    body = CompareOut.model_validate(r.json())
    assert body.mode == "checkpoints"
    assert [s.label for s in body.sides] == ["digits_cnn:epoch_01", "digits_cnn:final"]
    assert body.changed is not None and body.changed.scope == ["features.0"]
    assert len(body.changed.filters) == 8
    top = body.changed.filters[0]
    assert top.before.shape == [1, 3, 3] and top.change > 0
    for url in (top.before.map_url, top.after.map_url, body.sides[0].activations.mosaic_url):
        png = client.get(url)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"


def test_two_lite_models_on_a_photo(client, chelsea_jpeg):
    r = post_compare(
        client, chelsea_jpeg, model_a="efficientnet_lite0", model_b="efficientnet_lite1", top_k="3"
    )
    assert r.status_code == 200, r.text
    body = CompareOut.model_validate(r.json())
    assert body.mode == "models" and body.changed is None
    assert [len(s.predictions) for s in body.sides] == [3, 3]
    assert [s.layer for s in body.sides] == ["blocks.3", "blocks.3"]


@pytest.mark.parametrize(
    ("form", "image", "status", "error", "words"),
    [
        ({"model_a": "digits_cnn"}, DIGIT3, 422, "InvalidInputError", "Both sides are digits_cnn:weights"),
        ({"model_a": "digits_cnn", "checkpoint_b": "epoch_2"}, DIGIT3, 404, "NotFoundError", "epoch_"),
        ({"model_a": "digits_cnm", "model_b": "digits_cnn"}, DIGIT3, 404, "NotFoundError", "digits_cnn"),
        (
            {"model_a": "digits_cnn", "checkpoint_a": "epoch_01", "layer_a": "features.9"},
            DIGIT3,
            404,
            "NotFoundError",
            "features",
        ),
        ({"model_a": "digits_cnn", "checkpoint_a": "epoch_01"}, b"not an image", 415, None, "image"),
        ({"model_a": "digits_cnn", "checkpoint_a": "epoch_01", "changed": "0"}, DIGIT3, 422, None, "changed"),
    ],
)
def test_bad_compare_requests_are_4xx_with_a_readable_body(client, form, image, status, error, words):
    r = post_compare(client, image, **form)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"detail", "error"} and words in str(body["detail"])
    if error:
        assert body["error"] == error


def test_cka_of_two_lite_models_runs_as_a_job_and_is_cached(client):
    body = {
        "a": {"model": "efficientnet_lite0"},
        "b": {"model": "efficientnet_lite1"},
        "dataset": "lfw_subset",
        "max_images": 32,
    }
    r = client.post("/api/v1/compare/cka", json=body)
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["a"] == "efficientnet_lite0:weights" and started["num_images"] == 32
    result = CkaResultOut.model_validate(finished(client, started["job_id"], timeout=180))
    assert result.layers_a[:2] == ["conv_stem", "blocks.0"] and len(result.cka) == len(result.layers_a)
    stems = next(m for m in result.best_match if m.layer_a == "conv_stem")
    assert stems.layer_b == "conv_stem"  # the first layers of two sibling networks correspond
    again = client.post("/api/v1/compare/cka", json=body).json()
    assert again["job_id"] == started["job_id"] and again["cached"] is True


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"b": {"model": "efficientnet_lite0"}}, 422, "Both sides"),
        ({"dataset": "no_such_set"}, 404, "no_such_set"),
        ({"max_images": 100000}, 422, "max_images"),
        ({"layers_a": ["blocks.99"]}, 404, "blocks"),
        ({"b": {"model": "digits_cnn", "checkpoint": "epoch_99"}}, 404, "epoch_"),
        ({"pool": "sum"}, 422, "pool"),
    ],
)
def test_bad_cka_requests_are_4xx_before_any_job(client, change, status, words):
    body = {
        "a": {"model": "efficientnet_lite0"},
        "b": {"model": "efficientnet_lite1"},
        "dataset": "lfw_subset",
    }
    r = client.post("/api/v1/compare/cka", json={**body, **change})
    assert r.status_code == status, r.text
    assert words in str(r.json()["detail"]) and r.json()["error"]
    assert client.get("/api/v1/jobs").json() == []
