"""POST /api/v1/models/{id}/weights/pull against a local mirror (tests/weights_mirror.py): a job whose progress is
the download's bytes, after which the card says the weights are here and the model loads pretrained; a wrong
hash fails the job and registers nothing; 403 when CONVLENS_ALLOW_WEIGHT_DOWNLOADS is off, 404, 409, 422."""

from __future__ import annotations

import time

import pytest

from tests.weights_mirror import mirrored_api

MODEL = "squeezenet1_1"


@pytest.fixture
def api(weights_mirror, tmp_path):
    with mirrored_api(tmp_path, allow_downloads=True) as client:
        yield client


@pytest.fixture
def api_off(weights_mirror, tmp_path):
    with mirrored_api(tmp_path, allow_downloads=False) as client:
        yield client


def _wait(api, job_url: str, timeout: float = 120.0) -> tuple[dict, list[dict]]:
    """The finished job and every distinct state seen while polling."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(job_url).json()
        if not seen or seen[-1]["progress"] != job["progress"]:
            seen.append(job)
        if job["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            return job, seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_url} did not finish in {timeout} s")


def test_a_pull_job_reports_bytes_and_registers_a_model_that_loads_pretrained(weights_mirror, api):
    assert api.get(f"/api/v1/models/{MODEL}").json()["weights_pull"] is True
    _state, sha256 = weights_mirror.publish(MODEL)
    size = (weights_mirror.folder / f"{MODEL}-{sha256[:8]}.pth").stat().st_size

    r = api.post(f"/api/v1/models/{MODEL}/weights/pull")

    assert r.status_code == 202, r.text
    started = r.json()
    assert started["model_id"] == MODEL and started["file"] == f"{MODEL}-{sha256[:8]}.pth"
    job, _seen = _wait(api, started["job_url"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    files = job["frame"]["files"]
    assert files == [{"name": f"{MODEL}-{sha256[:8]}.pth", "received": size, "total": size}]
    assert job["result"] == {
        "model_id": MODEL,
        "file": f"{MODEL}-{sha256[:8]}.safetensors",
        "sha256": sha256,
        "already_there": False,
    }
    card = api.get(f"/api/v1/models/{MODEL}").json()
    assert card["pretrained"] is True and card["weights_pull"] is False
    assert card["origin"]["checkpoint"] == f"{MODEL}-{sha256[:8]}.safetensors"
    layers = api.get(f"/api/v1/models/{MODEL}/layers").json()
    assert layers["pretrained"] is True and layers["untrained"] is False

    again = api.post(f"/api/v1/models/{MODEL}/weights/pull")  # here now: nothing to pull
    assert again.status_code == 409 and "already has its weights" in again.json()["detail"]
    assert len(weights_mirror.requests) == 1


def test_a_wrong_hash_fails_the_job_and_registers_nothing(weights_mirror, api):
    weights_mirror.publish(MODEL, sha256_prefix="0badc0de")

    started = api.post(f"/api/v1/models/{MODEL}/weights/pull").json()
    job, _ = _wait(api, started["job_url"])

    assert job["status"] == "failed" and job["error_status"] == 502
    assert job["error"].startswith("Refused ") and "starts with 0badc0de" in job["error"]
    assert not weights_mirror.models_dir.exists() or not any(weights_mirror.models_dir.iterdir())
    assert api.get(f"/api/v1/models/{MODEL}").json()["weights_pull"] is True  # still missing


def test_403_names_the_setting_when_downloads_are_off(weights_mirror, api_off):
    weights_mirror.publish(MODEL)
    r = api_off.post(f"/api/v1/models/{MODEL}/weights/pull")
    assert r.status_code == 403
    body = r.json()
    assert body["error"] == "ForbiddenError" and "CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true" in body["detail"]
    assert f"convlens weights pull {MODEL}" in body["detail"]
    assert weights_mirror.requests == []
    assert api_off.get(f"/api/v1/models/{MODEL}").json()["weights_pull"] is False


def test_404_for_an_unknown_model_and_422_for_one_without_official_weights(weights_mirror, api):
    r = api.post("/api/v1/models/no_such_model/weights/pull")
    assert r.status_code == 404 and set(r.json()) >= {"detail", "error"}
    r = api.post("/api/v1/models/digits_cnn/weights/pull")  # trained here, no official weights
    assert r.status_code == 422 and "has no official weights to pull" in r.json()["detail"]
    assert api.get("/api/v1/models/digits_cnn").json()["weights_pull"] is False
    assert weights_mirror.requests == []
