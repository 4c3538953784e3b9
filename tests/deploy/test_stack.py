"""The lab deployment for real (issue 13): the images `make images` built, brought up by Docker Compose v2
with the default profile, then driven only through the published ports; then down and up again; then the
`scale` profile with Redis and a Celery worker. Run by `make test-deploy` (marker `deploy`, --deploy).
"""

from __future__ import annotations

import io
import json
import time
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import encode
from tests.deploy.stack import (
    ARTIFACTS,
    IMAGE_PREFIX,
    IMAGE_TAG,
    REDIS_IMAGE,
    TIMINGS,
    Stack,
    engine,
)
from tests.processes import free_port

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(1500)]

TOKEN = "deploy-test-" + "7f3a9c"  # handed to the API and the dashboard as a compose secret only
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROJECT = "convlens-deploytest"
IMAGES = [f"{IMAGE_PREFIX}-{t}:{IMAGE_TAG}" for t in ("api", "dashboard", "worker")]


@pytest.fixture(scope="module")
def eng():
    with engine() as e:
        missing = [i for i in [*IMAGES, REDIS_IMAGE] if not e.image_exists(i)]
        assert not missing, f"images missing (run `make images`): {missing}"
        yield e


@pytest.fixture(scope="module")
def stack(eng, request):
    api_port, dash_port = free_port(), free_port()
    env = {
        "CONVLENS_IMAGE_PREFIX": IMAGE_PREFIX,
        "CONVLENS_IMAGE_TAG": IMAGE_TAG,
        "CONVLENS_REDIS_IMAGE": REDIS_IMAGE,
        "CONVLENS_API_TOKEN": TOKEN,
        "CONVLENS_API_PUBLISHED_PORT": str(api_port),
        "CONVLENS_DASHBOARD_PUBLISHED_PORT": str(dash_port),
        "CONVLENS_PUBLIC_API_URL": f"http://127.0.0.1:{api_port}",
        "CONVLENS_DASHBOARD_ORIGIN": f"http://127.0.0.1:{dash_port}",
    }
    files = None
    if request.config.getoption("--deploy-gpu"):
        from server.config import REPO_ROOT

        files = [REPO_ROOT / "docker-compose.yml", REPO_ROOT / "docker-compose.gpu.yml"]
    s = Stack(eng, PROJECT, env, **({"files": files} if files else {}))
    s.api = f"http://127.0.0.1:{api_port}"  # type: ignore[attr-defined]
    s.dashboard = f"http://127.0.0.1:{dash_port}"  # type: ignore[attr-defined]
    with TIMINGS.step("compose down -v (leftovers of an earlier run)"):
        s.compose("--profile", "scale", "down", "-v", "--timeout", "5")
    try:
        with TIMINGS.step("compose up (default profile) until every healthcheck is healthy"):
            s.up(log_name="compose-up.log")
        yield s
    finally:
        (ARTIFACTS / "compose-logs.txt").write_text(s.logs())
        with TIMINGS.step("compose down -v"):
            s.compose("--profile", "scale", "down", "-v", "--timeout", "10")


def wait_ready(api: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{api}/readyz", timeout=10)
        if r.status_code == 200:
            return r.json()
        time.sleep(1)
    pytest.fail(f"/readyz not 200 after {timeout} s: {r.text}")


def wait_job(api: str, job_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{api}/api/v1/jobs/{job_id}", headers=AUTH, timeout=30).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(1)
    pytest.fail(f"job {job_id} not done after {timeout} s: {job}")


def test_compose_up_reached_healthy_and_its_log_is_saved(stack):
    log = (ARTIFACTS / "compose-up.log").read_text()
    containers = stack.containers()
    assert set(containers) == {"api", "dashboard"}
    assert all(stack.health(c) == "healthy" for c in containers.values())
    assert "every healthcheck healthy" in log
    ready = wait_ready(stack.api)
    assert ready["default_model"] == "efficientnet_lite0"
    if stack.files[-1].name == "docker-compose.gpu.yml":
        assert ready["device"] == "cuda"  # the synchronous routes run on the GPU too


def test_a_photo_gets_the_same_predictions_and_activations_as_a_checkout(stack, chelsea_jpeg, tmp_path):
    """Lite0 at 224 px in the container against the same request served by this checkout's own app."""
    from fastapi.testclient import TestClient

    from server.api.app import create_app
    from server.config import Settings

    wait_ready(stack.api)
    with TIMINGS.step("predict + activations through the published API port"):
        files = {"image": ("chelsea.jpg", chelsea_jpeg, "image/jpeg")}
        r = httpx.post(
            f"{stack.api}/api/v1/models/efficientnet_lite0/predict", files=files, headers=AUTH, timeout=120
        )
        assert r.status_code == 200, r.text
        acts = httpx.post(
            f"{stack.api}/api/v1/models/efficientnet_lite0/activations",
            files=files,
            data={"layer": "conv_stem"},
            headers=AUTH,
            timeout=120,
        )
        assert acts.status_code == 200, acts.text
    there = r.json()
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", preload_default_model=False))) as local:
        here = local.post("/api/v1/models/efficientnet_lite0/predict", files=files).json()
        local_acts = local.post(
            "/api/v1/models/efficientnet_lite0/activations", files=files, data={"layer": "conv_stem"}
        ).json()
    key = next(k for k in ("predictions", "top_k", "topk") if k in there)
    assert [p["label"] for p in there[key]] == [p["label"] for p in here[key]]
    assert np.allclose(
        [p["probability"] for p in there[key]], [p["probability"] for p in here[key]], atol=1e-4
    )
    body = acts.json()
    assert len(body["channels"]) == len(local_acts["channels"]) == 32
    ours = [c["mean"] for c in body["channels"]]
    assert np.allclose(ours, [c["mean"] for c in local_acts["channels"]], atol=1e-3)
    mosaic = httpx.get(f"{stack.api}{body['mosaic_url']}", headers=AUTH, timeout=30)
    assert mosaic.status_code == 200 and Image.open(io.BytesIO(mosaic.content)).format == "PNG"


def test_the_dashboard_page_reaches_the_api(stack):
    from playwright.sync_api import sync_playwright

    from tests.e2e.browser import VIEWPORT, ConsoleLog, launch

    wait_ready(stack.api)
    with (
        TIMINGS.step("dashboard page in headless chromium (prediction from the API)"),
        sync_playwright() as pw,
    ):
        browser = launch(pw)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(120_000)
            console = ConsoleLog()
            console.attach(page)
            page.goto(f"{stack.dashboard}/?model=efficientnet_lite0&image=sample:coffee")
            assert page.wait_for_selector("#top1-label").inner_text() == "espresso"
            page.wait_for_selector("#filter-grid-tiles .cl-tile")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
            assert console.errors == [], console.errors
        finally:
            browser.close()


def test_containers_run_as_non_root_and_hold_no_secret_in_their_environment(stack):
    assert httpx.get(f"{stack.api}/api/v1/models", timeout=30).status_code == 401  # the secret is in force
    assert httpx.get(f"{stack.api}/api/v1/models", headers=AUTH, timeout=30).status_code == 200
    for service, container in stack.containers().items():
        info = stack.engine.inspect(container)
        env = info["Config"]["Env"]
        assert not [e for e in env if TOKEN in e or e.startswith("CONVLENS_API_TOKEN=")], (service, env)
        uid = stack.engine.run("exec", container, "id", "-u").stdout.strip()
        assert uid not in ("", "0"), (service, uid)
        environ = stack.engine.run("exec", container, "cat", "/proc/1/environ").stdout
        assert TOKEN not in environ, service


def digits_zip(n_per_class: int = 12, classes: tuple[int, ...] = (0, 1, 7)) -> bytes:
    """Real 8x8 digits (scikit-learn) as a zip with one folder per class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for c in classes:
            for i, idx in enumerate(np.flatnonzero(digits.target == c)[:n_per_class]):
                img = (digits.images[idx] * (255 / 16)).astype(np.uint8)
                z.writestr(f"{c}/{i}.png", encode(np.stack([img] * 3, axis=-1)))
    return buf.getvalue()


PROJECTION = {
    "model": "digits_cnn",
    "layer": "features.0",
    "dataset": "deploy-digits",
    "method": "tsne",
    "params": {"perplexity": 5, "n_iter": 250, "seed": 0},
}


def test_an_uploaded_dataset_and_a_projection_survive_compose_down_and_up(stack):
    with TIMINGS.step("upload a data set, t-SNE job in the API"):
        r = httpx.post(
            f"{stack.api}/api/v1/datasets",
            data={"name": "deploy-digits"},
            files={"archive": ("digits.zip", digits_zip(), "application/zip")},
            headers=AUTH,
            timeout=120,
        )
        assert r.status_code == 201, r.text
        assert r.json()["id"] == PROJECTION["dataset"]
        before = httpx.get(f"{stack.api}/api/v1/datasets/deploy-digits", headers=AUTH, timeout=30).json()
        started = httpx.post(f"{stack.api}/api/v1/projections", json=PROJECTION, headers=AUTH, timeout=120)
        assert started.status_code == 202, started.text
        first = wait_job(stack.api, started.json()["job_id"])
        assert first["status"] == "succeeded", first
    with TIMINGS.step("compose down + up (default profile) until healthy"):
        stack.down()
        assert stack.containers() == {}
        stack.up(log_name="compose-up-again.log")
    wait_ready(stack.api)
    after = httpx.get(f"{stack.api}/api/v1/datasets/deploy-digits", headers=AUTH, timeout=30)
    assert after.status_code == 200 and after.json() == before
    again = httpx.post(f"{stack.api}/api/v1/projections", json=PROJECTION, headers=AUTH, timeout=120)
    assert again.status_code == 202, again.text
    second = wait_job(stack.api, again.json()["job_id"])
    assert second["status"] == "succeeded" and second["message"] == "cached result", second
    assert second["result"]["coords"] == first["result"]["coords"]


def test_the_scale_profile_runs_a_tsne_job_the_api_started_on_a_worker(stack):
    stack.env |= {"COMPOSE_PROFILES": "scale", "CONVLENS_JOB_BACKEND": "celery"}
    with TIMINGS.step("compose --profile scale up (redis + worker, celery backend) until healthy"):
        stack.up(log_name="compose-up-scale.log")
    containers = stack.containers()
    assert {"api", "dashboard", "redis", "worker"} <= set(containers)
    worker_host = stack.engine.inspect(containers["worker"])["Config"]["Hostname"]
    wait_ready(stack.api)
    with TIMINGS.step("t-SNE job on the worker"):
        body = PROJECTION | {"params": {"perplexity": 6, "n_iter": 250, "seed": 1}}
        started = httpx.post(f"{stack.api}/api/v1/projections", json=body, headers=AUTH, timeout=120)
        assert started.status_code == 202, started.text
        job = wait_job(stack.api, started.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["worker"] not in (None, "inprocess") and worker_host in job["worker"], job["worker"]
    assert len(job["result"]["coords"]) == 36
    redis_uid = stack.engine.run("exec", containers["redis"], "id", "-u").stdout.strip()
    assert redis_uid not in ("", "0")


def test_image_sizes_are_recorded_and_the_dashboard_image_is_a_quarter_of_the_api_image(eng):
    sizes = {i: eng.image_size(i) for i in IMAGES}
    api, dash = sizes[IMAGES[0]], sizes[IMAGES[1]]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "image-sizes.json").write_text(
        json.dumps(
            {**{k: v // 10**6 for k, v in sizes.items()}, "dashboard/api": round(dash / api, 3)}, indent=2
        )
    )
    assert dash <= api / 4, sizes
    listing = eng.run(
        "run",
        "--rm",
        "--entrypoint",
        "python",
        IMAGES[1],
        "-c",
        "import importlib.util as u; print(u.find_spec('torch'), u.find_spec('server'))",
    ).stdout
    assert listing.split() == ["None", "None"], listing
