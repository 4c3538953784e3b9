"""A server a lab can share (issue 12), tried against a real `python -m server` over HTTP."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import encode, wait_for
from tests.processes import api_process, api_server, rss_bytes

pytestmark = pytest.mark.e2e

CACHE_BUDGET = 150_000


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    env = {
        "CONVLENS_MAX_QUEUE": "1",
        "CONVLENS_MODEL_CONCURRENCY": "1",
        "CONVLENS_CACHE_MAX_BYTES": str(CACHE_BUDGET),
    }
    with api_process(tmp / "data", tmp / "logs", **env) as url:
        yield url, tmp / "data"


def noise_png(i: int, size: int = 8) -> bytes:
    return encode(np.random.default_rng(i).integers(0, 255, (size, size, 3), dtype=np.uint8))


def test_past_the_queue_requests_get_503_with_retry_after_and_health_stays_up(lab):
    url, _ = lab
    n = 24
    barrier = threading.Barrier(n + 1)
    results: list[httpx.Response | None] = [None] * n

    def client(i: int) -> None:
        image = noise_png(1000 + i, size=224)  # distinct images: no cached answers
        barrier.wait()
        results[i] = httpx.post(
            f"{url}/api/v1/models/efficientnet_lite0/predict", files={"image": ("x.png", image)}, timeout=120
        )

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    health = httpx.get(f"{url}/healthz", timeout=10)
    for t in threads:
        t.join(150)
    statuses = [r.status_code for r in results if r is not None]
    assert len(statuses) == n and set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) >= 1 and statuses.count(200) >= 1, statuses
    for r in results:
        assert r is not None
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1"
            assert r.json()["error"] == "ServiceBusyError" and "CONVLENS_MAX_QUEUE" in r.json()["detail"]
    assert health.status_code == 200
    again = httpx.post(
        f"{url}/api/v1/models/efficientnet_lite0/predict",
        files={"image": ("x.png", noise_png(1))},
        timeout=60,
    )
    assert again.status_code == 200  # the queue drained: served again


def disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_disk_stays_within_the_budget_and_uploaded_datasets_are_kept(lab):
    url, data_dir = lab
    files = [("images", (f"{i}.png", noise_png(i))) for i in range(6)]
    r = httpx.post(f"{url}/api/v1/datasets", data={"name": "mine"}, files=files, timeout=60)
    assert r.status_code == 201, r.text
    # the uploaded dataset's own folder: the built-in ones may still be written at start-up meanwhile
    mine = data_dir / "datasets" / r.json()["id"]
    dataset_files = {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()}
    assert dataset_files
    first_npy = None
    for i in range(120):
        r = httpx.post(
            f"{url}/api/v1/models/digits_cnn/activations",
            files={"image": (f"{i}.png", noise_png(i))},
            data={"layer": "features.0"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        first_npy = first_npy or r.json()["npy_url"]
    assert disk_bytes(data_dir / "cache") <= CACHE_BUDGET * 1.1
    assert httpx.get(f"{url}{first_npy}").status_code == 404  # evicted, least recently used
    assert {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()} == dataset_files
    assert httpx.get(f"{url}/api/v1/datasets/mine").status_code == 200


def _median_seconds(send, n: int) -> float:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        r = send(i)
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    return statistics.median(times)


def test_a_long_deepvis_job_does_not_block_predict_or_attributions_on_the_same_model(lab):
    """The issue's lock test: Lite0 at 224 px; medians of several requests (distinct images, so
    nothing is answered from a cache), idle and while a 2,000-step DeepVis job renders on Lite0."""
    url, _ = lab
    model = f"{url}/api/v1/models/efficientnet_lite0"
    seq = iter(range(10**6))

    def predict(_i: int) -> httpx.Response:
        return httpx.post(
            f"{model}/predict", files={"image": ("x.png", noise_png(5000 + next(seq), size=224))}, timeout=120
        )

    def attribution(_i: int) -> httpx.Response:
        return httpx.post(
            f"{model}/attributions",
            files={"image": ("x.png", noise_png(5000 + next(seq), size=224))},
            data={"method": "guided_backprop", "layer": "blocks.3", "channel": "0"},
            timeout=120,
        )

    predict(0), attribution(0)  # warm-up: model loaded, layers traced
    idle_predict, idle_attr = _median_seconds(predict, 5), _median_seconds(attribution, 3)
    r = httpx.post(f"{model}/deepvis", json={"target": {"class_index": 1}, "steps": 2000}, timeout=60)
    assert r.status_code == 202, r.text
    job = f"{url}{r.json()['job_url']}"
    try:
        wait_for(lambda: httpx.get(job).json()["progress"] > 0, timeout=120)
        busy_predict, busy_attr = _median_seconds(predict, 5), _median_seconds(attribution, 3)
        state = httpx.get(job).json()
        assert state["status"] == "running", state  # measured while the render ran
    finally:
        httpx.delete(job)
    print(
        f"predict {idle_predict:.3f}s -> {busy_predict:.3f}s; attribution {idle_attr:.3f}s -> {busy_attr:.3f}s"
    )
    assert busy_predict <= 4 * idle_predict, (idle_predict, busy_predict)
    assert busy_attr <= 4 * idle_attr, (idle_attr, busy_attr)


@pytest.mark.slow
def test_a_1000_upload_soak_keeps_disk_within_the_budget_and_memory_flat(tmp_path):
    """1,000 distinct uploads to /activations and /predict on digits_cnn against a real server with a
    small cache budget: the cache stays within the budget plus 10%, and the server's RSS after the soak
    stays within 10% of its RSS after the first 100 uploads (answer caches and artifacts are bounded)."""
    budget = 400_000
    env = {"CONVLENS_CACHE_MAX_BYTES": str(budget), "CONVLENS_DEFAULT_MODEL": "digits_cnn"}
    with (
        api_server(tmp_path / "data", tmp_path / "logs", **env) as (url, proc),
        httpx.Client(timeout=60) as http,
    ):
        rss_at_100 = 0
        for i in range(1000):
            img = noise_png(100_000 + i)
            if i % 2:
                r = http.post(f"{url}/api/v1/models/digits_cnn/predict", files={"image": (f"{i}.png", img)})
            else:
                r = http.post(
                    f"{url}/api/v1/models/digits_cnn/activations",
                    files={"image": (f"{i}.png", img)},
                    data={"layer": "features.3"},
                )
            assert r.status_code == 200, r.text
            if i == 99:
                rss_at_100 = rss_bytes(proc.pid)
        rss_after = rss_bytes(proc.pid)
        cache = disk_bytes(tmp_path / "data" / "cache")
        print(
            f"soak: cache {cache:,} B (budget {budget:,}); RSS {rss_at_100 / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB"
        )
        assert cache <= budget * 1.1, f"cache {cache} bytes over the budget {budget}"
        assert rss_after <= rss_at_100 * 1.1, f"RSS {rss_at_100 / 2**20:.0f} MB -> {rss_after / 2**20:.0f} MB"
        assert http.get(f"{url}/healthz").status_code == 200
