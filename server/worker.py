"""The Celery worker: ``celery -A server.worker worker`` runs ConvLens jobs queued by the API.

Every setting comes from the same ``CONVLENS_*`` environment as the API (``CONVLENS_REDIS_URL`` is
the broker and the job store). The worker registers the same task functions as the API
(:func:`server.tasks.register_all`) and runs each job with :func:`server.jobs.run_job` against a
:class:`server.jobs_redis.RedisJobStore`, so a job runs the same code in both modes. Delivery and
worker-loss rules are documented on :func:`server.jobs_redis.make_celery`.
"""

from __future__ import annotations

import socket

from server.config import get_settings
from server.jobs_redis import RUN_JOB_TASK, RedisJobStore, make_celery, run_queued_job
from server.tasks import register_all

settings = get_settings()
app = make_celery(settings)
store = RedisJobStore.from_url(settings.redis_url, ttl=settings.job_ttl_seconds)
register_all()
if settings.num_threads:
    import torch

    torch.set_num_threads(settings.num_threads)


@app.task(name=RUN_JOB_TASK, bind=True)
def run_job_task(self, job_id: str) -> str:
    """Run one queued job; its outcome is recorded in the job store (the return value is for logs)."""
    worker = self.request.hostname or socket.gethostname()
    return run_queued_job(store, job_id, worker, settings.job_heartbeat_seconds, settings.job_stale_seconds)
