"""The job-start reply of every route that starts a job, and what every job carries (its data_dir)."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.datasets.test_store import png

TERMINAL = ("succeeded", "failed", "cancelled")
JOB_STARTED = {"job_id", "status", "job_url"}
CACHED = JOB_STARTED | {"cached"}

# route, body, the reply's keys beyond the common ones
STARTS = [
    (
        "/api/v1/models/digits_cnn/deepvis",
        {"target": {"class_index": 3}, "steps": 2},
        CACHED | {"model", "untrained", "config"},
    ),
    (
        "/api/v1/models/digits_cnn/top-images",
        {"dataset": "tiny", "layer": "features.3", "channel": 1, "k": 2},
        CACHED | {"model", "untrained", "dataset", "num_images"},
    ),
    (
        "/api/v1/projections",
        {"model": "digits_cnn", "layer": "features.5", "dataset": "tiny", "method": "pca"},
        CACHED | {"n_points", "method", "params", "untrained"},
    ),
    (
        "/api/v1/audits",
        {"model": "digits_cnn", "dataset": "tiny"},
        CACHED | {"model", "dataset", "untrained"},
    ),
    (
        "/api/v1/checkpoints/compare",
        {"model": "digits_cnn", "checkpoints": ["epoch_01", "epoch_03"]},
        JOB_STARTED | {"checkpoints", "untrained"},
    ),
]


@pytest.fixture
def tiny(client):
    files = [("images", (f"{i}.png", png(i * 20, size=8), "image/png")) for i in range(8)]
    r = client.post("/api/v1/datasets", data={"name": "tiny", "labels": ["1", "2"] * 4}, files=files)
    assert r.status_code == 201, r.text
    return client


def finished(client, job_id: str) -> dict:
    return wait_for(
        lambda: (j := client.get(f"/api/v1/jobs/{job_id}").json())["status"] in TERMINAL and j, timeout=120
    )


@pytest.mark.parametrize(("path", "body", "keys"), STARTS, ids=[s[0].rsplit("/", 1)[-1] for s in STARTS])
def test_every_job_start_route_replies_with_the_job_started_shape(tiny, settings, path, body, keys):
    r = tiny.post(path, json=body)
    assert r.status_code == 202, r.text
    reply = r.json()
    assert set(reply) == keys
    assert reply["job_url"] == f"/api/v1/jobs/{reply['job_id']}"
    assert reply["status"] in ("queued", "running", "succeeded")
    assert reply.get("cached", False) is False
    job = finished(tiny, reply["job_id"])
    assert job["status"] == "succeeded", job
    assert job["params"]["data_dir"] == str(settings.data_dir)  # what a worker needs to find the data
    if "cached" in keys:  # the same request again is the finished job
        again = tiny.post(path, json=body).json()
        assert again["cached"] is True and again["job_id"] == reply["job_id"]
        assert again["status"] == "succeeded"
