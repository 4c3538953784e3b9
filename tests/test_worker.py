"""``server.worker``: the Celery worker builds its services once at start, from its settings, and runs
every queued job with them and the one task table (the Redis + Celery path runs in tests/integration/)."""

from __future__ import annotations

import importlib
import sys

from server.config import get_settings
from server.services import Services
from server.tasks import TASKS
from tests.processes import free_port


def test_the_worker_builds_its_services_at_start_and_runs_jobs_with_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLENS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONVLENS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # never reached here
    monkeypatch.delitem(sys.modules, "server.worker", raising=False)
    get_settings.cache_clear()
    try:
        worker = importlib.import_module("server.worker")
    finally:
        get_settings.cache_clear()
    monkeypatch.delitem(sys.modules, "server.worker")  # the next import is a fresh worker again
    assert isinstance(worker.services, Services)
    assert worker.services.settings is worker.settings
    assert worker.services.settings.data_dir == tmp_path / "data"

    calls = []
    monkeypatch.setattr(
        worker, "run_queued_job", lambda store, job_id, **kw: calls.append((store, job_id, kw))
    )
    worker.run_job_task("job-1")
    worker.run_job_task("job-2")
    (store, first, kw), (_, second, kw2) = calls
    assert (first, second) == ("job-1", "job-2") and store is worker.store
    assert kw["services"] is kw2["services"] is worker.services  # built once, not per job
    assert kw["tasks"] is TASKS
    assert kw["heartbeat_seconds"] == worker.settings.job_heartbeat_seconds
    worker.app.close()
