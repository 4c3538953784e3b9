"""Jobs shared through Redis and run on Celery workers: :class:`RedisJobStore` and :class:`CeleryRunner`.

With ``CONVLENS_JOB_BACKEND=celery`` the API keeps job states in Redis and sends only the job id to
a Celery queue; a worker (``celery -A server.worker worker``, on this machine or another one) reads
the job from the same Redis and calls :func:`server.jobs.run_job` with the same task table
(:data:`server.tasks.TASKS`) the in-process runner uses, and services it built at start from its
settings (:class:`server.services.Services`). Progress, frames, control values and cancel flags
travel through Redis.

A worker that dies cannot report its own death, so while a job runs its worker keeps a key
``convlens:job:<id>:alive`` that expires ``job_stale_seconds`` after the last heartbeat (sent every
``job_heartbeat_seconds``). Whoever reads a running job whose key has expired turns it into
``failed`` with a message that says so (atomically, in Redis), so a job is never left "running"
after its worker is gone. Expiry is Redis's clock, so the API and workers on other machines need
no synchronised clocks.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from server.errors import ConvLensError
from server.jobs import JobState, Task, run_job

if TYPE_CHECKING:
    from celery import Celery

    from server.config import Settings
    from server.services import Services

log = logging.getLogger(__name__)

PREFIX = "convlens:job:"
INDEX = "convlens:jobs"  # sorted set of job ids by creation time
CACHE_PREFIX = "convlens:jobcache:"
RUN_JOB_TASK = "convlens.run_job"
QUEUE = "convlens"
LIST_LIMIT = 500

# Atomically fail a running job (KEYS[1]) whose liveness key (KEYS[2]) has expired.
_FAIL_LOST = """
if redis.call('HGET', KEYS[1], 'status') ~= '"running"' then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', '"failed"', 'error', ARGV[1], 'message', ARGV[2], 'updated', ARGV[3])
return 1
"""

_FIELDS = tuple(JobState.__dataclass_fields__)


class JobBackendUnavailableError(ConvLensError):
    """Redis, which holds the jobs and queues them for the workers, cannot be reached."""

    status_code = 503


F = TypeVar("F", bound=Callable[..., Any])


def _redis_errors_as_unavailable(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(self: RedisJobStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise JobBackendUnavailableError(
                f"The job store (Redis at {self.where}) cannot be reached: {str(exc).rstrip('.')}. "
                "Is Redis running and CONVLENS_REDIS_URL right?"
            ) from exc

    return wrapper  # type: ignore[return-value]


def _key(job_id: str) -> str:
    return PREFIX + job_id


def _jsonable(value: Any) -> Any:
    """What the in-process store would keep as Python objects: numpy arrays and scalars, paths, tuples."""
    if hasattr(value, "tolist"):  # numpy arrays and numpy scalars (and torch tensors on the CPU)
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_jsonable)


class RedisJobStore:
    """The :class:`server.jobs.JobStore` protocol on Redis: one hash per job, one JSON value per field.

    Fields are written with HSET, so the worker's progress updates and the API's cancel never
    overwrite each other's fields. Every key expires ``ttl`` seconds after its last update.
    """

    def __init__(self, client: redis.Redis, ttl: int = 24 * 3600) -> None:
        self.r = client
        self.ttl = int(ttl)
        kw = client.connection_pool.connection_kwargs
        self.where = (
            f"{kw.get('host', kw.get('path', '?'))}:{kw.get('port', '')}/{kw.get('db', 0)}"  # no password
        )
        self._fail_lost = self.r.register_script(_FAIL_LOST)

    @classmethod
    def from_url(cls, url: str, ttl: int = 24 * 3600) -> RedisJobStore:
        return cls(redis.Redis.from_url(url, health_check_interval=30), ttl=ttl)

    # -- the JobStore protocol -------------------------------------------------------------
    @_redis_errors_as_unavailable
    def create(self, state: JobState) -> None:
        key = _key(state.id)
        with self.r.pipeline() as p:
            p.hset(key, mapping={k: _dumps(v) for k, v in state.to_dict().items()})
            p.expire(key, self.ttl)
            p.zadd(INDEX, {state.id: state.created})
            p.execute()

    @_redis_errors_as_unavailable
    def get(self, job_id: str) -> JobState | None:
        raw = self.r.hgetall(_key(job_id))
        if not raw:
            return None
        state = self._decode(raw)
        if state.status == "running" and self._fail_if_lost(state):
            return self._decode(self.r.hgetall(_key(job_id)))
        return state

    @_redis_errors_as_unavailable
    def update(self, job_id: str, **fields: Any) -> None:
        key = _key(job_id)
        fields["updated"] = time.time()
        with self.r.pipeline() as p:
            p.exists(key)
            p.hget(key, "cache_key")
            exists, cache_key = p.execute()
        if not exists:  # expired or never created: do not resurrect a partial hash
            return
        with self.r.pipeline() as p:
            p.hset(key, mapping={k: _dumps(v) for k, v in fields.items()})
            p.expire(key, self.ttl)
            ck = json.loads(cache_key) if cache_key else None
            if fields.get("status") == "succeeded" and ck:
                p.set(CACHE_PREFIX + ck, job_id, ex=self.ttl)
            p.execute()

    @_redis_errors_as_unavailable
    def request_cancel(self, job_id: str) -> None:
        self.r.set(_key(job_id) + ":cancel", "1", ex=self.ttl)

    @_redis_errors_as_unavailable
    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.r.exists(_key(job_id) + ":cancel"))

    @_redis_errors_as_unavailable
    def set_control(self, job_id: str, values: dict[str, Any]) -> None:
        key = _key(job_id) + ":control"
        with self.r.pipeline() as p:
            p.hset(key, mapping={k: _dumps(v) for k, v in values.items()})
            p.expire(key, self.ttl)
            p.execute()

    @_redis_errors_as_unavailable
    def get_control(self, job_id: str) -> dict[str, Any]:
        raw = self.r.hgetall(_key(job_id) + ":control")
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    @_redis_errors_as_unavailable
    def find_cached(self, cache_key: str) -> JobState | None:
        job_id = self.r.get(CACHE_PREFIX + cache_key)
        if job_id is None:
            return None
        st = self.get(job_id.decode())
        return st if st is not None and st.status == "succeeded" else None

    @_redis_errors_as_unavailable
    def list(self) -> list[JobState]:
        ids = [i.decode() for i in self.r.zrange(INDEX, -LIST_LIMIT, -1)]
        with self.r.pipeline(transaction=False) as p:
            for job_id in ids:
                p.hgetall(_key(job_id))
            raws = p.execute()
        states, gone = [], []
        for job_id, raw in zip(ids, raws, strict=True):
            if not raw:
                gone.append(job_id)
                continue
            state = self._decode(raw)
            if state.status == "running" and self._fail_if_lost(state):
                state = self._decode(self.r.hgetall(_key(job_id)))
            states.append(state)
        if gone:
            self.r.zrem(INDEX, *gone)
        return states

    # -- liveness ------------------------------------------------------------------------------
    @_redis_errors_as_unavailable
    def beat(self, job_id: str, worker: str, alive_for: float) -> None:
        """Declare the job's worker alive for the next ``alive_for`` seconds."""
        self.r.set(_key(job_id) + ":alive", worker, px=max(1, int(alive_for * 1000)))

    def _fail_if_lost(self, state: JobState) -> bool:
        silent = time.time() - state.heartbeat
        who = f"worker '{state.worker}'" if state.worker else "its worker"
        error = (
            f"The job was lost: {who} stopped sending heartbeats (last progress {silent:.0f} s ago); "
            "it was killed, crashed or lost its connection to Redis. Submit the job again."
        )
        key = _key(state.id)
        args = [json.dumps(error), json.dumps("worker lost"), json.dumps(time.time())]
        return bool(self._fail_lost(keys=[key, key + ":alive"], args=args))

    @staticmethod
    def _decode(raw: dict[bytes, bytes]) -> JobState:
        values = {k.decode(): json.loads(v) for k, v in raw.items()}
        return JobState(**{k: v for k, v in values.items() if k in _FIELDS})


class Heartbeat:
    """While a job runs on a worker, keep its liveness key fresh from a daemon thread.

    The first beat is sent on entry, before the job is marked running.
    """

    def __init__(
        self, store: RedisJobStore, job_id: str, worker: str, interval: float, alive_for: float
    ) -> None:
        self._beat = lambda: store.beat(job_id, worker, alive_for)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"convlens-beat-{job_id[:8]}")

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except (
                redis.RedisError,
                JobBackendUnavailableError,
            ):  # a blip: the next beat retries; expiry needs several misses
                continue

    def __enter__(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 1)


def run_queued_job(
    store: RedisJobStore,
    job_id: str,
    *,
    tasks: Mapping[str, Task],
    services: Services,
    worker: str,
    heartbeat_seconds: float,
    alive_for: float,
) -> str:
    """What a worker does with a job id taken from the queue; returns what became of the job.

    Skips a job that is gone or no longer queued (cancelled before it started, or a redelivered
    message of a job that already ran or was lost); otherwise runs it under a :class:`Heartbeat`
    with the worker's ``tasks`` and ``services`` (those for the job's data directory).
    """
    state = store.get(job_id)
    if state is None:
        log.warning("job %s has expired or never existed; skipping", job_id)
        return "missing"
    if state.status != "queued":
        log.info("job %s is already %s; skipping the message", job_id, state.status)
        return f"skipped ({state.status})"
    with Heartbeat(store, job_id, worker, heartbeat_seconds, alive_for):
        run_job(store, job_id, state.kind, state.params, tasks=tasks, services=services, worker=worker)
    final = store.get(job_id)
    return final.status if final else "missing"


def make_celery(settings: Settings) -> Celery:
    """The Celery app for both sides: the API only sends to it, workers consume from it.

    ``acks_late`` with a prefetch of one: a worker holds at most the message it is running, so
    queued jobs stay in Redis for any other (or a restarted) worker. A job whose worker dies is
    not re-run (``reject_on_worker_lost`` off): its liveness key expires and the store marks it
    failed; a job that took its worker down (out of memory, say) would take the next one down too.
    """
    from celery import Celery

    app = Celery("convlens", broker=settings.redis_url, backend=settings.redis_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # the job's state and result live in the RedisJobStore
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        worker_pool="threads",  # torch releases the GIL; a worker's jobs share its loaded models
        worker_concurrency=settings.worker_concurrency,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
    )
    return app


class CeleryRunner:
    """The :class:`server.jobs.Runner` protocol on Celery: queue the job id for any worker to take."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def start(self, store: Any, state: JobState) -> None:
        self.app.send_task(RUN_JOB_TASK, args=[state.id])

    def shutdown(self) -> None:
        self.app.close()
