"""POST /api/v1/models/{id}/deepvis and the job it starts (poll, frames, cancel, cache)."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest

from server.engine.hooks import active_hook_count
from tests.conftest import wait_for

URL = "/api/v1/models/{}/deepvis"


def start(client, model: str = "digits_cnn", **body):
    return client.post(URL.format(model), json=body)


def finished(client, job_id: str) -> dict:
    def done():
        state = client.get(f"/api/v1/jobs/{job_id}").json()
        return state if state["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, timeout=120)


def test_class_job_runs_streams_frames_and_is_cached(client):
    body = {"target": {"class_index": 7}, "preset": "deepvis", "steps": 16, "seed": 3, "frame_every": 4}
    r = start(client, **body)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["cached"] is False and job["untrained"] is False and job["config"]["steps"] == 16
    state = finished(client, job["job_id"])
    assert state["status"] == "succeeded", state
    result = state["result"]
    assert result["class_probability"] >= 0.9 and result["class_label"] == "7"
    assert len(result["values"]) == 16 and result["final_value"] > result["start_value"]
    assert state["frame"]["step"] == 16 and state["frame_index"] == 4  # a frame every 4 steps
    assert client.get(state["frame"]["image_url"]).status_code == 200
    img = np.load(io.BytesIO(client.get(result["npy_url"]).content), allow_pickle=False)
    assert img.shape == (8, 8, 1) and img.min() >= 0 and img.max() <= 1
    png = client.get(result["image_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    # The same request again: the finished job is returned, not recomputed.
    again = start(client, **body).json()
    assert again["cached"] is True and again["job_id"] == job["job_id"]
    # Another seed is another image.
    other = finished(client, start(client, **{**body, "seed": 4}).json()["job_id"])
    other_img = np.load(io.BytesIO(client.get(other["result"]["npy_url"]).content), allow_pickle=False)
    assert not np.array_equal(img, other_img)


def test_cancel_stops_within_one_step_and_frees_the_model(client):
    r = start(
        client,
        target={"layer": "features.3", "channel": 2},
        steps=10_000,
        seed=1,
        blur_every=2,
        blur_sigma=0.5,
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}").json()["progress"] > 0.0005, timeout=60)
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 200
    at_cancel = client.get(f"/api/v1/jobs/{job_id}").json()["progress"]
    state = finished(client, job_id)
    assert state["status"] == "cancelled"
    assert state["progress"] <= at_cancel + 1 / 10_000 + 1e-9  # at most the step in flight
    # Freed: no hooks left, and another thread can take the model's lock at once.
    lm = client.app.state.services.zoo.load("digits_cnn")  # the model the job ran on
    assert active_hook_count(lm.model) == 0
    got = []
    t = threading.Thread(
        target=lambda: got.append(lm.lock.acquire(timeout=5) and (lm.lock.release() or True))
    )
    t.start()
    t.join()
    assert got == [True]


def test_an_unknown_layer_gets_404_naming_the_closest(client):
    r = start(client, target={"layer": "features.33", "channel": 0})
    assert r.status_code == 404, r.text
    assert "Unknown layer 'features.33'" in r.json()["detail"] and "features.3" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"target": {"class_index": 1}, "steps": 0}, "steps"),
        ({"target": {"class_index": 1}, "steps": -5}, "steps"),
        ({"target": {"class_index": 1}, "blur_every": 4, "blur_sigma": 0}, "blur_sigma"),
        ({"target": {"class_index": 1}, "blur_every": 4, "blur_sigma": 1000}, "blur_sigma"),
        ({"target": {"class_index": 1}, "blur_every": -1}, "blur_every"),
        (
            {"target": {"class_index": 1}, "preset": "lucid", "blur_every": 2, "blur_sigma": 1},
            "param='pixel'",
        ),
        ({"target": {"class_index": 10}}, "class_index 10 is out of range"),
        ({"target": {"layer": "features.3", "channel": 64}}, "Channel 64 is out of range"),
        ({"target": {"layer": "features.3", "neuron": 4096}}, "Neuron 4096 is out of range"),
        ({"target": {"layer": "features.3", "channel": 1, "neuron": 2}}, "exactly one of channel or neuron"),
        ({"target": {"layer": "features.3"}}, "exactly one of channel or neuron"),
        ({"target": {}}, "class_index"),
        ({"target": {"class_index": 1}, "preset": "magic"}, "preset"),
        ({"target": {"class_index": 1}, "wobble": 3}, "wobble"),
    ],
)
def test_bad_parameters_get_422_with_a_message(client, body, message):
    r = start(client, **body)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]


def test_top_images_of_a_filter_over_the_digits_dataset(client):
    r = client.post(
        "/api/v1/models/digits_cnn/top-images",
        json={"dataset": "digits", "layer": "features.3", "channel": 5},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["num_images"] == 1797 and job["dataset"] == "digits"
    state = finished(client, job["job_id"])
    assert state["status"] == "succeeded", state
    images = state["result"]["images"]
    assert len(images) == 9 and len({i["index"] for i in images}) == 9
    values = [i["value"] for i in images]
    assert values == sorted(values, reverse=True) and values[0] > 0
    for item in images:
        top, left, bottom, right = item["box"]
        assert 0 <= top < bottom <= 8 and 0 <= left < right <= 8
        for name in ("image_url", "crop_url", "deconv_url", "deconv_crop_url"):
            assert client.get(item[name]).status_code == 200
    again = client.post(
        "/api/v1/models/digits_cnn/top-images",
        json={"dataset": "digits", "layer": "features.3", "channel": 5},
    ).json()
    assert again["cached"] is True


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"dataset": "digits", "layer": "features.3", "channel": 64}, 422, "Channel 64 is out of range"),
        ({"dataset": "digits", "layer": "nope", "channel": 0}, 404, "Unknown layer 'nope'"),
        ({"dataset": "no-such-set", "layer": "features.3", "channel": 0}, 404, "Unknown dataset"),
        ({"dataset": "digits", "layer": "features.3", "channel": 0, "k": 0}, 422, "k"),
    ],
)
def test_top_images_bad_parameters(client, body, status, message):
    r = client.post("/api/v1/models/digits_cnn/top-images", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_a_cached_job_whose_images_were_evicted_runs_again(client):
    """Issue 12: a finished job answers an identical request only while the files it links to exist."""
    body = {"target": {"class_index": 3}, "steps": 8, "seed": 5}
    first = start(client, **body).json()
    result = finished(client, first["job_id"])["result"]
    key = result["image_url"].split("/")[-2]
    budget = client.app.state.services.artifacts.budget
    budget.remove_tree(budget.root / "artifacts" / key)  # what eviction does to the whole folder
    again = start(client, **body).json()
    assert again["cached"] is False and again["job_id"] != first["job_id"]
    rerun = finished(client, again["job_id"])["result"]
    assert client.get(rerun["image_url"]).status_code == 200
