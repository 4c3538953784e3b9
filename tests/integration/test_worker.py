"""Distributed jobs end to end: the API (job_backend=celery) with a real redis-server and real
`celery -A server.worker worker` processes (the worker image's CMD), all started here.

A t-SNE job submitted through the API runs on the worker and streams frames, takes a live
learning-rate change, and finishes with the same result shape as in-process; killing the worker
mid-job turns the job into a clear failed state; a worker started later picks up new jobs.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sklearn.datasets import load_digits

from server.api.app import create_app
from server.config import REPO_ROOT, Settings
from tests.conftest import encode, wait_for
from tests.deploy.images import compose_config
from tests.integration.services import start_worker, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_POINTS = 240
TERMINAL = ("succeeded", "failed", "cancelled")


def upload_digits(client: TestClient, name: str, n: int) -> None:
    """The first ``n`` scikit-learn digits as 8x8 PNGs with their labels, through the datasets API."""
    d = load_digits()
    files, labels = [], []
    for i in range(n):
        img = Image.fromarray((d.images[i] / 16.0 * 255).astype(np.uint8), "L")
        files.append(("images", (f"{i}.png", encode(img), "image/png")))
        labels.append(str(d.target[i]))
    r = client.post("/api/v1/datasets", data={"name": name, "labels": labels}, files=files)
    assert r.status_code == 201, r.text


def start_tsne(client: TestClient, dataset: str, **params) -> str:
    body = {
        "model": "digits_cnn",
        "layer": "features.6",
        "dataset": dataset,
        "method": "tsne",
        "params": params,
    }
    r = client.post("/api/v1/projections", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["cached"] is False
    return r.json()["job_id"]


def job(client: TestClient, job_id: str, since: int | None = None) -> dict:
    r = client.get(f"/api/v1/jobs/{job_id}", params={} if since is None else {"since": since})
    assert r.status_code == 200, r.text
    return r.json()


def follow(client: TestClient, job_id: str, timeout: float = 180.0) -> tuple[dict, list[dict]]:
    """Poll like the dashboard does (``?since=``), collecting every new frame until the job ends."""
    frames: list[dict] = []
    since = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        j = job(client, job_id, since)
        if j["frame"] is not None:
            assert j["frame_index"] > since
            frames.append(j["frame"])
            since = j["frame_index"]
        if j["status"] in TERMINAL:
            return j, frames
        time.sleep(0.05)
    pytest.fail(f"job {job_id} did not finish in {timeout}s: {job(client, job_id)}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"  # shared by the API and the workers, as the compose `data` volume is


@pytest.fixture
def api(redis_server, data_dir: Path):
    redis_server.client.flushdb()
    settings = Settings(
        job_backend="celery",
        redis_url=redis_server.url,
        data_dir=data_dir,
        models_dir=REPO_ROOT / "models",
        preload_default_model=False,
        device="cpu",
    )
    with TestClient(create_app(settings)) as client:
        upload_digits(client, "digits240", N_POINTS)
        yield client


def test_tsne_job_runs_on_the_worker_streams_frames_and_takes_live_changes(
    api, redis_server, data_dir, workers
):
    w1 = workers(redis_server.url, data_dir, "w1")
    job_id = start_tsne(
        api, "digits240", perplexity=15, early_exaggeration_iter=60, n_iter=1500, frame_every=5, seed=1
    )
    first = wait_for(lambda: (j := job(api, job_id))["frame"] and j, timeout=120)
    assert first["status"] == "running"
    assert first["worker"].startswith("w1@")  # it runs on the worker, not in the API process
    assert len(first["frame"]["coords"]) == N_POINTS
    r = api.patch(f"/api/v1/projections/{job_id}", json={"learning_rate": 80.0})
    assert r.status_code == 200, r.text
    assert r.json()["control"] == {"learning_rate": 80.0}  # read back from Redis

    done, frames = follow(api, job_id)
    assert done["status"] == "succeeded", done
    assert len(frames) >= 3  # frames stream while it runs, not just the final one
    iterations = [f["iteration"] for f in frames if f.get("iteration") is not None]
    assert iterations == sorted(iterations) and len(set(iterations)) >= 3
    assert any(f.get("learning_rate") == 80.0 for f in frames)  # the live change reached the worker
    res = done["result"]
    assert len(res["coords"]) == N_POINTS and res["n"] == N_POINTS
    assert res["classes"] == [str(i) for i in range(10)]
    assert res["live_changed"] is True
    assert 0.0 <= res["purity"]["trustworthiness"] <= 1.0
    assert np.isfinite(np.asarray(res["coords"])).all()
    listed = {j["id"]: j for j in api.get("/api/v1/jobs").json()}
    assert listed[job_id]["status"] == "succeeded"
    assert w1.alive


def test_killed_worker_fails_the_job_clearly_and_a_restarted_worker_takes_new_jobs(
    api, redis_server, data_dir, workers
):
    w1 = workers(redis_server.url, data_dir, "w1")
    long_job = start_tsne(
        api, "digits240", perplexity=15, early_exaggeration_iter=50, n_iter=20000, frame_every=5, seed=2
    )
    wait_for(lambda: job(api, long_job)["frame_index"] >= 3, timeout=120)
    assert job(api, long_job)["status"] == "running"
    w1.kill()  # SIGKILL to the whole worker: no chance to report anything

    killed_at = time.monotonic()
    failed = wait_for(lambda: (j := job(api, long_job))["status"] != "running" and j, timeout=30)
    assert failed["status"] == "failed"
    assert "w1@" in failed["error"] and "stopped sending heartbeats" in failed["error"]
    assert "Submit the job again" in failed["error"]
    assert time.monotonic() - killed_at < 15  # CONVLENS_JOB_STALE_SECONDS=3 for these workers
    r = api.patch(f"/api/v1/projections/{long_job}", json={"learning_rate": 50.0})
    assert r.status_code == 409  # a failed job cannot be steered

    new_job = start_tsne(api, "digits240", perplexity=10, early_exaggeration_iter=30, n_iter=120, seed=3)
    time.sleep(1.0)
    assert job(api, new_job)["status"] == "queued"  # no worker: it waits in Redis, not lost

    workers(redis_server.url, data_dir, "w2")
    done, frames = follow(api, new_job)
    assert done["status"] == "succeeded", done
    assert done["worker"].startswith("w2@")
    assert len(done["result"]["coords"]) == N_POINTS and frames
    assert job(api, long_job)["status"] == "failed"  # the lost job stays failed, it is not re-run


def test_a_worker_on_another_data_dir_works_on_the_data_of_the_api_that_queued_the_job(
    api, redis_server, data_dir, tmp_path, workers
):
    """A job carries its API's data_dir; the worker runs it with services for that directory."""
    elsewhere = tmp_path / "worker-data"
    workers(redis_server.url, elsewhere, "w3")
    body = {"model": "digits_cnn", "layer": "features.6", "dataset": "digits240", "method": "pca"}
    r = api.post("/api/v1/projections", json=body)
    assert r.status_code == 202, r.text
    done, _frames = follow(api, r.json()["job_id"])
    assert done["status"] == "succeeded", done
    assert done["worker"].startswith("w3@") and done["params"]["data_dir"] == str(data_dir)
    assert len(done["result"]["coords"]) == N_POINTS
    assert (data_dir / "cache" / "datasets" / "digits240").is_dir()  # features cached next to the API's data
    assert not (elsewhere / "datasets" / "digits240").exists()


def test_the_compose_worker_healthcheck_answers_only_while_the_worker_runs(redis_server, tmp_path):
    """The worker image's CMD, unchanged, and the compose healthcheck command, with the same environment."""
    env = worker_env(redis_server.url, tmp_path / "data")
    test = compose_config("scale")["services"]["worker"]["healthcheck"]["test"]
    assert test[0] == "CMD"

    def probe() -> subprocess.CompletedProcess[str]:
        return subprocess.run(test[1:], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)

    worker = start_worker(redis_server.url, tmp_path / "data", "celery", tmp_path / "w.log", exact_cmd=True)
    try:
        done = probe()
        assert done.returncode == 0, done.stdout + done.stderr
        assert "worker: healthy" in done.stdout
    finally:
        worker.stop()
    done = probe()
    assert done.returncode == 1 and "worker: unhealthy" in done.stdout
