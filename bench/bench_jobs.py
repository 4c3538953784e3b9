"""Distributed jobs (issue 7), measured in one run on this machine with a real redis-server and real
`celery -A server.worker worker` processes:

1. Job overhead: the same small t-SNE (digits_cnn features of 300 digits, cached after warm-up)
   submitted through the API and polled to completion, in-process vs on one Celery worker; and a
   job that does almost nothing (a projection whose result the task finds on disk), which isolates
   the job system's own cost (queue, Redis round trips, polling). Both sides use one torch thread;
   the runs alternate so that background load hits both alike. Prints median wall times, their
   difference (the worker path's overhead) and their ratio.
2. Feature-extraction throughput: 4 `features` jobs (EfficientNet-Lite0 up to `bn2`, 200 images
   each, no cache) on one worker vs two workers (one torch thread each). Prints images/second
   and the two-worker speed-up; each layout is run twice on fresh datasets, alternating.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient

from server.api.app import create_app
from server.config import REPO_ROOT, Settings
from server.datasets.store import DatasetStore
from server.services import Services
from tests.integration.services import celery_worker, redis_server

TSNE_POINTS = 300
TSNE_PARAMS = {"perplexity": 20, "early_exaggeration_iter": 50, "n_iter": 150, "frame_every": 10}
TSNE_REPEATS = 15
TSNE_POLL = 0.05  # about what a dashboard does
FEATURE_JOBS, FEATURE_IMAGES = 4, 200
FEATURE_MODEL, FEATURE_LAYER = "efficientnet_lite0", "bn2"


def digits_files(n: int) -> tuple[list[tuple[str, bytes]], list[str]]:
    from PIL import Image
    from sklearn.datasets import load_digits

    from tests.conftest import encode

    d = load_digits()
    files = [
        (f"{i}.png", encode(Image.fromarray((d.images[i] / 16.0 * 255).astype(np.uint8), "L")))
        for i in range(n)
    ]
    return files, [str(t) for t in d.target[:n]]


def run_job(client: TestClient, path: str, body: dict, poll: float) -> tuple[float, float]:
    """(seconds from the POST that starts a job to its `succeeded` as a client polling every ``poll`` s
    sees it, seconds from the job's creation to its last update as the job store recorded them)."""
    t0 = time.perf_counter()
    r = client.post(path, json=body)
    assert r.status_code in (200, 202), r.text
    job_id = r.json()["job_id"]
    while True:
        j = client.get(f"/api/v1/jobs/{job_id}", params={"since": 10**9}).json()
        if j["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(poll)
    elapsed = time.perf_counter() - t0
    assert j["status"] == "succeeded", j
    return elapsed, j["updated"] - j["created"]


def tsne_body(seed: int) -> dict:
    params = {**TSNE_PARAMS, "seed": seed}  # a new seed each run: no cached result
    return {
        "model": "digits_cnn",
        "layer": "features.6",
        "dataset": "digits300",
        "method": "tsne",
        "params": params,
    }


def bench_overhead(tmp: Path, redis_url: str) -> None:
    data_dir = tmp / "tsne-data"
    store = DatasetStore(data_dir / "datasets", data_dir / "cache")
    files, labels = digits_files(TSNE_POINTS)
    store.create_from_files("digits300", files, labels)
    common = {
        "data_dir": data_dir,
        "models_dir": REPO_ROOT / "models",
        "preload_default_model": False,
        "device": "cpu",
        "num_threads": 1,
    }
    local = TestClient(create_app(Settings(job_backend="inprocess", job_workers=1, **common)))
    remote = TestClient(create_app(Settings(job_backend="celery", redis_url=redis_url, **common)))
    tsne: dict[str, list[float]] = {"in-process": [], "worker": []}
    empty: dict[str, list[float]] = {"in-process": [], "worker": []}
    pca = {"model": "digits_cnn", "layer": "features.6", "dataset": "digits300", "method": "pca"}
    with local, remote, celery_worker(redis_url, data_dir, "bench1", tmp / "w-tsne.log"):
        clients = {"in-process": local, "worker": remote}
        seed = 100
        for client in clients.values():  # warm-up: features extracted and cached, models loaded
            run_job(client, "/api/v1/projections", tsne_body(seed := seed + 1), TSNE_POLL)
            # Then a PCA whose result the task finds on disk: a job that does ~no work. The job-level
            # cache (find_cached) is bypassed so that each POST makes a new job.
            client.app.state.services.jobs.store.find_cached = lambda _key: None
            run_job(client, "/api/v1/projections", pca, 0.002)
        for _ in range(TSNE_REPEATS):
            for name, client in clients.items():
                tsne[name].append(
                    run_job(client, "/api/v1/projections", tsne_body(seed := seed + 1), TSNE_POLL)
                )
            for name, client in clients.items():
                empty[name].append(run_job(client, "/api/v1/projections", pca, 0.002))
    iters = TSNE_PARAMS["early_exaggeration_iter"] + TSNE_PARAMS["n_iter"]
    rows = [
        (
            f"small t-SNE ({TSNE_POINTS} points, {iters} iterations), polled every {TSNE_POLL * 1000:.0f} ms",
            tsne,
        ),
        ("a job that does ~nothing (PCA result already on disk), polled every 2 ms", empty),
    ]
    print(f"\n1. job time through the API, in-process vs one Celery worker, median of {TSNE_REPEATS}:")
    for title, samples in rows:
        wall = {k: statistics.median(w for w, _ in v) for k, v in samples.items()}
        life = {k: statistics.median(x for _, x in v) for k, v in samples.items()}
        print(f"   {title}:")
        for k, v in samples.items():
            runs = ", ".join(f"{w * 1000:.0f}" for w, _ in v)
            print(
                f"     {k:<11} client {wall[k] * 1000:7.1f} ms, store {life[k] * 1000:7.1f} ms   (client runs: {runs})"
            )
        print(
            f"     worker overhead {(wall['worker'] - wall['in-process']) * 1000:+.1f} ms per job as the client "
            f"sees it ({wall['worker'] / wall['in-process']:.2f}x), "
            f"{(life['worker'] - life['in-process']) * 1000:+.1f} ms in the store"
        )


def make_files_for_warmup(store: DatasetStore) -> list[tuple[str, bytes]]:
    src = store.ensure_builtin("lfw_subset")
    return [(f"{i}.png", store.image_bytes(src.id, i)[0]) for i in range(8)]


def make_feature_datasets(store: DatasetStore, prefix: str, n: int) -> list[str]:
    src = store.ensure_builtin("lfw_subset")
    files = [(f"{i}.png", store.image_bytes(src.id, i)[0]) for i in range(FEATURE_IMAGES)]
    labels = [r.label for r in src.records[:FEATURE_IMAGES]]
    return [store.create_from_files(f"{prefix}{k}", files, labels).id for k in range(n)]


def run_feature_jobs(jobs, data_dir: Path, datasets: list[str]) -> float:
    t0 = time.perf_counter()
    ids = [
        jobs.submit(
            "features",
            {
                "model": FEATURE_MODEL,
                "layer": FEATURE_LAYER,
                "dataset": ds,
                "pool": "mean",
                "data_dir": str(data_dir),
            },
        ).id
        for ds in datasets
    ]
    for job_id in ids:
        st = jobs.wait(job_id, timeout=900, poll=0.02)
        assert st.status == "succeeded", st.error
        assert st.result["n"] == FEATURE_IMAGES and not st.result["from_cache"], st.result
    return time.perf_counter() - t0


def bench_feature_throughput(tmp: Path, redis_url: str) -> None:
    data_dir = tmp / "feature-data"
    store = DatasetStore(data_dir / "datasets", data_dir / "cache")
    warm = store.create_from_files("warm", make_files_for_warmup(store), None).id
    jobs = Services.from_settings(Settings(job_backend="celery", redis_url=redis_url, data_dir=data_dir)).jobs
    rates: dict[int, list[float]] = {1: [], 2: []}
    for rnd in range(2):
        for n_workers in (1, 2):
            datasets = make_feature_datasets(store, f"r{rnd}w{n_workers}-", FEATURE_JOBS)
            names = [f"feat{rnd}{n_workers}{i}" for i in range(n_workers)]
            with ExitStack() as stack:
                for nm in names:
                    stack.enter_context(celery_worker(redis_url, data_dir, nm, tmp / f"w-{nm}.log"))
                # One small job per worker (prefetch 1: each takes one), so models load before timing.
                warm_ids = [
                    jobs.submit(
                        "features",
                        {"model": FEATURE_MODEL, "layer": layer, "dataset": warm, "data_dir": str(data_dir)},
                    ).id
                    for layer in ("blocks.0", "blocks.1")[:n_workers]
                ]
                for job_id in warm_ids:
                    assert jobs.wait(job_id, timeout=300).status == "succeeded"
                seconds = run_feature_jobs(jobs, data_dir, datasets)
            rates[n_workers].append(FEATURE_JOBS * FEATURE_IMAGES / seconds)
    jobs.shutdown()
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"\n2. feature extraction, {FEATURE_JOBS} jobs x {FEATURE_IMAGES} images, {FEATURE_MODEL} up to {FEATURE_LAYER}:"
    )
    for k, v in rates.items():
        print(
            f"   {k} worker{'s' if k > 1 else ' '}  {med[k]:6.1f} images/s   (runs: {', '.join(f'{r:.1f}' for r in v)})"
        )
    print(f"   two workers / one worker = {med[2] / med[1]:.2f}x")


def main() -> None:
    print(f"cpus: {os.cpu_count()}, load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="convlens-bench-jobs-") as d:
        tmp = Path(d)
        with redis_server(tmp / "redis") as url:
            if "--only-throughput" not in sys.argv:
                bench_overhead(tmp, url)
            if "--only-overhead" not in sys.argv:
                bench_feature_throughput(tmp, url)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
