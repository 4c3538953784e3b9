"""The Celery worker: ``celery -A server.worker worker`` runs ConvLens jobs queued by the API.

Every setting comes from the same ``CONVLENS_*`` environment as the API (``CONVLENS_REDIS_URL`` is
the broker and the job store). At start the worker builds its services once from those settings
(:meth:`server.services.Services.from_settings`); a job carries the data directory of the API that
submitted it, and runs with the services for that directory (:meth:`Services.for_job`). Each job
runs with :func:`server.jobs.run_job` and the same task table as the API (:data:`server.tasks.TASKS`)
against a :class:`server.jobs_redis.RedisJobStore`, so a job runs the same code in both modes.
Delivery and worker-loss rules are documented on :func:`server.jobs_redis.make_celery`.
"""

from __future__ import annotations

import socket

from server.config import get_settings
from server.jobs_redis import RUN_JOB_TASK, RedisJobStore, make_celery, run_queued_job
from server.services import Services
from server.tasks import TASKS

settings = get_settings()
app = make_celery(settings)
store = RedisJobStore.from_url(settings.redis_url, ttl=settings.job_ttl_seconds)
services = Services.from_settings(settings)
if settings.num_threads:
    import torch

    torch.set_num_threads(settings.num_threads)


@app.task(name=RUN_JOB_TASK, bind=True)
def run_job_task(self, job_id: str) -> str:
    """Run one queued job; its outcome is recorded in the job store (the return value is for logs)."""
    return run_queued_job(
        store,
        job_id,
        tasks=TASKS,
        services=services,
        worker=self.request.hostname or socket.gethostname(),
        heartbeat_seconds=settings.job_heartbeat_seconds,
        alive_for=settings.job_stale_seconds,
    )
