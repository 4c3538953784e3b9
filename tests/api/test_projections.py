"""Projection API: start jobs, stream frames, PATCH epsilon live, 422s with messages, export, cache."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.datasets.test_store import png

SMALL_TSNE = {"perplexity": 10, "early_exaggeration_iter": 50, "n_iter": 100, "frame_every": 10}


def make_dataset(client, name: str, n: int, same: bool = False) -> None:
    files = [
        ("images", (f"{i}.png", png(7 if same else (i * 37) % 250, size=8), "image/png")) for i in range(n)
    ]
    labels = ["a" if i % 2 else "b" for i in range(n)]
    r = client.post("/api/v1/datasets", data={"name": name, "labels": labels}, files=files)
    assert r.status_code == 201, r.text


def finished(client, job_id: str, timeout: float = 120.0) -> dict:
    return wait_for(
        lambda: (
            (j := client.get(f"/api/v1/jobs/{job_id}").json())["status"]
            in ("succeeded", "failed", "cancelled")
            and j
        ),
        timeout,
    )


def test_pca_job_returns_coords_purity_and_trustworthiness(client) -> None:
    make_dataset(client, "twenty", 20)
    body = {"model": "digits_cnn", "layer": "features.5", "dataset": "twenty", "method": "pca"}
    r = client.post("/api/v1/projections", json=body)
    assert r.status_code == 202, r.text
    job = finished(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    res = job["result"]
    assert len(res["coords"]) == 20 and res["feature_dim"] == 64
    assert 0 < res["metrics"]["explained_variance"] <= 1
    assert 0 <= res["purity"]["trustworthiness"] <= 1
    assert set(res["purity"]["embedding"]["per_class"]) == {"a", "b"}
    assert res["untrained"] is False and len(res["predictions"]) == 20
    again = client.post("/api/v1/projections", json=body).json()
    assert again["cached"] is True and again["job_id"] == r.json()["job_id"]
    csv_text = client.get(f"/api/v1/projections/{again['job_id']}/export.csv").text.splitlines()
    assert csv_text[0] == "index,x,y,label,predicted" and len(csv_text) == 21
    act = client.get(f"/api/v1/projections/{again['job_id']}/activation", params={"channel": 3}).json()
    assert len(act["values"]) == 20
    assert (
        client.get(f"/api/v1/projections/{again['job_id']}/activation", params={"channel": 64}).status_code
        == 404
    )


def test_tsne_streams_frames_and_patch_changes_epsilon_live(client) -> None:
    body = {
        "model": "digits_cnn",
        "layer": "classifier.2",
        "dataset": "digits",
        "method": "tsne",
        "params": {
            "perplexity": 20,
            "early_exaggeration_iter": 100,
            "n_iter": 3000,
            "learning_rate": 200,
            "frame_every": 5,
        },
    }
    r = client.post("/api/v1/projections", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    first = wait_for(lambda: (j := client.get(f"/api/v1/jobs/{job_id}").json())["frame"] and j, 120)
    assert len(first["frame"]["coords"]) == 1797 and first["frame"]["learning_rate"] == 200
    points = client.get(f"/api/v1/projections/{job_id}/points").json()
    assert points["classes"][:3] == ["0", "1", "2"] and len(points["labels"]) == 1797
    r = client.patch(f"/api/v1/projections/{job_id}", json={"learning_rate": 35.0})
    assert r.status_code == 200, r.text
    assert r.json()["control"] == {"learning_rate": 35.0}

    def new_rate_frame():
        j = client.get(f"/api/v1/jobs/{job_id}").json()
        f = j["frame"]
        return (
            f
            if f and f.get("learning_rate") == 35.0 and f["iteration"] > first["frame"]["iteration"]
            else None
        )

    frame = wait_for(new_rate_frame, 60)
    assert frame["graph_builds"] == 1  # the neighbour graph was not rebuilt
    r = client.patch(f"/api/v1/projections/{job_id}", json={"perplexity": 5000})
    assert r.status_code == 422 and "perplexity" in r.json()["detail"]
    client.delete(f"/api/v1/jobs/{job_id}")
    job = finished(client, job_id, 30)
    assert job["status"] == "cancelled"
    r = client.patch(f"/api/v1/projections/{job_id}", json={"learning_rate": 10})
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"dataset": "ten", "params": {"perplexity": 10}},
            "perplexity must be smaller than a third of the number of points",
        ),
        ({"dataset": "four"}, "at least 5 points"),
        ({"dataset": "ten", "params": {"perplexity": -3}}, "at least"),
        ({"dataset": "ten", "params": {"lr": 3}}, "Unknown parameter"),
        ({"dataset": "ten", "method": "lda"}, "method"),
        ({"dataset": "ten", "layer": "features.99"}, "Did you mean"),
        ({"dataset": "nine"}, "Unknown dataset"),
    ],
)
def test_bad_parameters_get_422_or_404_with_a_message(client, body: dict, message: str) -> None:
    make_dataset(client, "ten", 10)
    make_dataset(client, "four", 4)
    full = {"model": "digits_cnn", "layer": "features.5", "method": "tsne", **body}
    r = client.post("/api/v1/projections", json=full)
    assert r.status_code in (404, 422), r.text
    assert r.status_code == (404 if "Unknown dataset" in message or "Did you mean" in message else 422)
    assert message in r.json()["detail"]


def test_constant_features_get_422(client) -> None:
    make_dataset(client, "same", 8, same=True)
    body = {"model": "digits_cnn", "layer": "features.5", "dataset": "same", "method": "pca"}
    r = client.post("/api/v1/projections", json=body)
    assert r.status_code == 202  # features are not known yet: the job finds out
    job = finished(client, r.json()["job_id"])
    assert job["status"] == "failed" and job["error_status"] == 422 and "constant" in job["error"]
    r = client.post("/api/v1/projections", json=body)  # now the features are cached: refused up front
    assert r.status_code == 422 and "constant" in r.json()["detail"]


def test_features_job_reports_progress_and_is_cached(client) -> None:
    make_dataset(client, "feat", 12)
    jobs = client.app.state.services.jobs
    params = {"model": "digits_cnn", "layer": "features.5", "dataset": "feat", "pool": "max"}
    state = jobs.wait(jobs.submit("features", params).id, timeout=60)
    assert state.status == "succeeded" and state.result["dim"] == 64 and state.result["from_cache"] is False
    again = jobs.wait(jobs.submit("features", params).id, timeout=60)
    assert again.result["from_cache"] is True and again.result["key"] == state.result["key"]


def test_sammon_job_can_be_cancelled_mid_run(client) -> None:
    body = {
        "model": "digits_cnn",
        "layer": "classifier.2",
        "dataset": "digits",
        "method": "sammon",
        "params": {"max_iter": 5000, "tol": 0},
    }
    job_id = client.post("/api/v1/projections", json=body).json()["job_id"]
    wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}").json()["progress"] > 0.45, 120)
    client.delete(f"/api/v1/jobs/{job_id}")
    assert finished(client, job_id, 60)["status"] == "cancelled"


def test_cached_nan_features_get_422_up_front(client) -> None:
    import numpy as np

    make_dataset(client, "nan", 8)
    assert (
        client.post(
            "/api/v1/projections", json={"model": "digits_cnn", "layer": "x", "dataset": "nope"}
        ).status_code
        == 404
    )
    service = client.app.state.services.projections
    loaded = service.zoo.load("digits_cnn")
    from server.features_cache import feature_key

    key = feature_key(loaded, "features.5", service.datasets.get("nan"), "mean", None)
    values = np.ones((8, 64), dtype=np.float32)
    values[3, 5] = np.nan
    service.features.put("nan", key, values)
    r = client.post(
        "/api/v1/projections",
        json={"model": "digits_cnn", "layer": "features.5", "dataset": "nan", "method": "pca"},
    )
    assert r.status_code == 422 and "NaN" in r.json()["detail"]


def test_a_steered_run_is_not_served_as_the_cached_result(client) -> None:
    make_dataset(client, "steer", 40)
    body = {
        "model": "digits_cnn",
        "layer": "features.5",
        "dataset": "steer",
        "method": "tsne",
        "params": SMALL_TSNE,
    }
    job_id = client.post("/api/v1/projections", json=body).json()["job_id"]
    assert client.patch(f"/api/v1/projections/{job_id}", json={"learning_rate": 20}).status_code == 200
    job = finished(client, job_id)
    assert job["status"] == "succeeded" and job["result"]["live_changed"] is True
    again = client.post("/api/v1/projections", json=body).json()
    assert again["job_id"] != job_id and again["cached"] is False
