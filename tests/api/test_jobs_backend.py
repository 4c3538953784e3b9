"""The job backend setting: in-process by default; with celery, jobs live in Redis (a 503 that says
so when Redis cannot be reached). The Redis + Celery path itself runs in tests/integration/."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server.api.app import create_app
from server.config import Settings
from server.jobs import MemoryJobStore, ThreadRunner
from server.jobs_redis import CeleryRunner, RedisJobStore
from tests.processes import free_port


def test_inprocess_is_the_default(client):
    jobs = client.app.state.services.jobs
    assert isinstance(jobs.store, MemoryJobStore) and isinstance(jobs.runner, ThreadRunner)


def test_celery_backend_keeps_jobs_in_redis_and_says_when_redis_is_down(settings: Settings):
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"  # nothing listens there
    s = settings.model_copy(update={"job_backend": "celery", "redis_url": url})
    with TestClient(create_app(s)) as client:
        jobs = client.app.state.services.jobs
        assert isinstance(jobs.store, RedisJobStore) and isinstance(jobs.runner, CeleryRunner)
        assert jobs.runner.app.conf.broker_url.endswith(url.rsplit("@", 1)[1])
        r = client.get("/api/v1/jobs")
        assert r.status_code == 503
        body = r.json()
        assert body["error"] == "JobBackendUnavailableError"
        assert "Redis" in body["detail"] and "CONVLENS_REDIS_URL" in body["detail"]
        assert "secret" not in body["detail"]
        assert client.get("/api/v1/jobs/abc").status_code == 503
        assert client.get("/healthz").status_code == 200
