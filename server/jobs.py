"""Background work with progress, intermediate frames, live control values and cancel.

A *task* is a plain function ``fn(ctx, params) -> result``; :data:`server.tasks.TASKS` names them
all and the composition root hands that table to the job manager and its runner. A task reaches
the process's services as ``ctx.services``, reports progress and frames through its
:class:`JobContext`, reads live control values (for example a new t-SNE learning rate) with
``ctx.control()``, and stops when ``ctx.check_cancelled()`` raises :class:`JobCancelled`.

Where a job's state lives (a :class:`JobStore`) is separate from where it runs (a runner):
in-process threads by default; other runners (e.g. Celery workers) call :func:`run_job` with a
store they share with the API, so the same task code runs in both modes.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from server.errors import ConflictError, ConvLensError, InvalidInputError, NotFoundError
from server.redact import redact

if TYPE_CHECKING:
    from server.services import Services

log = logging.getLogger(__name__)

TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")
INTERRUPTED = "interrupted"  # the server shut down while the job was queued or running


class JobCancelled(Exception):
    """Raised inside a task when its job was cancelled."""


@dataclass
class JobState:
    id: str
    kind: str
    params: dict[str, Any]
    status: str = "queued"  # queued | running | succeeded | failed | cancelled | interrupted
    progress: float = 0.0
    message: str = ""
    frame: Any = None  # latest intermediate result
    frame_index: int = 0  # increases with every new frame
    result: Any = None
    error: str | None = None
    error_status: int | None = None  # HTTP status of a user error that made the job fail
    cache_key: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    heartbeat: float = field(default_factory=time.time)
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


Task = Callable[["JobContext", dict[str, Any]], Any]
Progress = Callable[
    [float, str], None
]  # (fraction 0..1, message): how a service reports; a task passes ctx.report


def no_progress(_fraction: float, _message: str) -> None:
    """The progress callback of a run that nobody watches (the CLI)."""


@dataclass(frozen=True)
class JobPlan:
    """A job a service has validated and keyed, ready to submit: the task kind, its params, the cache
    key (None: never answered from the cache) and the details its start reply describes it with."""

    kind: str
    params: dict[str, Any]
    cache_key: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class JobStore(Protocol):
    def create(self, state: JobState) -> None: ...
    def get(self, job_id: str) -> JobState | None: ...
    def update(self, job_id: str, **fields: Any) -> None: ...
    def request_cancel(self, job_id: str) -> None: ...
    def cancel_requested(self, job_id: str) -> bool: ...
    def set_control(self, job_id: str, values: dict[str, Any]) -> None: ...
    def get_control(self, job_id: str) -> dict[str, Any]: ...
    def find_cached(self, cache_key: str) -> JobState | None: ...
    def list(self) -> list[JobState]: ...


class MemoryJobStore:
    """Job states in this process's memory, bounded to the most recent ``max_jobs``."""

    def __init__(self, max_jobs: int = 500) -> None:
        self._jobs: OrderedDict[str, JobState] = OrderedDict()
        self._cancel: set[str] = set()
        self._control: dict[str, dict[str, Any]] = {}
        self._by_cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self._max = max_jobs

    def create(self, state: JobState) -> None:
        with self._lock:
            self._jobs[state.id] = state
            while len(self._jobs) > self._max:
                old_id, old = next(iter(self._jobs.items()))
                if not old.done:
                    break
                self._jobs.pop(old_id)
                self._control.pop(old_id, None)
                self._cancel.discard(old_id)

    def get(self, job_id: str) -> JobState | None:
        with self._lock:
            st = self._jobs.get(job_id)
            return None if st is None else JobState(**st.to_dict())

    def update(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            st = self._jobs.get(job_id)
            if st is None:
                return
            for k, v in fields.items():
                setattr(st, k, v)
            st.updated = time.time()
            if st.status == "succeeded" and st.cache_key:
                self._by_cache[st.cache_key] = st.id

    def request_cancel(self, job_id: str) -> None:
        with self._lock:
            self._cancel.add(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._cancel

    def set_control(self, job_id: str, values: dict[str, Any]) -> None:
        with self._lock:
            self._control.setdefault(job_id, {}).update(values)

    def get_control(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._control.get(job_id, {}))

    def find_cached(self, cache_key: str) -> JobState | None:
        with self._lock:
            job_id = self._by_cache.get(cache_key)
            st = self._jobs.get(job_id) if job_id else None
            return None if st is None else JobState(**st.to_dict())

    def list(self) -> list[JobState]:
        with self._lock:
            return [JobState(**s.to_dict()) for s in self._jobs.values()]


class JobContext:
    """What a running task sees of its job, and the services of its process (``ctx.services``)."""

    def __init__(
        self, store: JobStore, job_id: str, services: Services, min_frame_interval: float = 0.0
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.services = services
        self._frame_index = 0
        self._last_frame = 0.0
        self.min_frame_interval = min_frame_interval

    @property
    def cancelled(self) -> bool:
        return self.store.cancel_requested(self.job_id)

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled(self.job_id)

    def report(
        self, progress: float, message: str | None = None, frame: Any = None, force: bool = False
    ) -> None:
        """Record progress (0..1) and optionally a new intermediate frame; raises JobCancelled if cancelled."""
        self.check_cancelled()
        fields: dict[str, Any] = {"progress": float(min(max(progress, 0.0), 1.0)), "heartbeat": time.time()}
        if message is not None:
            fields["message"] = message
        now = time.monotonic()
        if frame is not None and (force or now - self._last_frame >= self.min_frame_interval):
            self._frame_index += 1
            self._last_frame = now
            fields["frame"] = frame
            fields["frame_index"] = self._frame_index
        self.store.update(self.job_id, **fields)

    def control(self) -> dict[str, Any]:
        """Live control values sent by clients while the job runs (e.g. ``{"learning_rate": 500}``)."""
        return self.store.get_control(self.job_id)


def run_job(
    store: JobStore,
    job_id: str,
    kind: str,
    params: dict[str, Any],
    *,
    tasks: Mapping[str, Task],
    services: Services,
    worker: str | None = None,
) -> None:
    """Run one job to a terminal state with the services for its data directory
    (:meth:`server.services.Services.for_job`). Never raises: failures are recorded on the job."""
    if store.cancel_requested(job_id):
        store.update(job_id, status="cancelled", message="cancelled before it started")
        return
    fn = tasks.get(kind)
    if fn is None:
        store.update(job_id, status="failed", error=f"unknown task kind '{kind}'")
        return
    store.update(job_id, status="running", worker=worker, heartbeat=time.time())
    try:
        ctx = JobContext(store, job_id, services.for_job(params))
        with ctx.services.artifacts.budget.scope():  # what the job writes or reads is not evicted under it
            result = fn(ctx, params)
    except JobCancelled:
        current = store.get(job_id)
        if current is None or current.status != INTERRUPTED:  # interrupt_all() already said why
            store.update(job_id, status="cancelled", message="cancelled")
    except ConvLensError as exc:
        store.update(
            job_id,
            status="failed",
            error=redact(exc.message, services.settings),
            error_status=exc.status_code,
        )
    except Exception as exc:  # a bug or an environment failure: keep the server alive, report it
        log.exception("job %s (%s) failed", job_id, kind)  # the stack trace goes to the log only
        store.update(
            job_id,
            status="failed",
            error=redact(f"{type(exc).__name__}: {exc}", services.settings),
            message="internal error; the server log has the details",
        )
    else:
        store.update(job_id, status="succeeded", progress=1.0, result=result)


class Runner(Protocol):
    def start(self, store: JobStore, state: JobState) -> None: ...
    def shutdown(self) -> None: ...


class ThreadRunner:
    """Runs jobs in a thread pool of this process, with this process's tasks and services."""

    def __init__(self, tasks: Mapping[str, Task], services: Services, workers: int = 2) -> None:
        self.tasks = tasks
        self.services = services
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convlens-job")

    def start(self, store: JobStore, state: JobState) -> None:
        self._pool.submit(
            run_job,
            store,
            state.id,
            state.kind,
            state.params,
            tasks=self.tasks,
            services=self.services,
            worker="inprocess",
        )

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class JobManager:
    """Submit, inspect, steer and cancel jobs; the only job API the web layer uses.

    ``tasks`` are the kinds it accepts. Every job it submits carries ``data_dir`` (when given), so
    that a worker in another process or on another machine works on the same data as the API.
    """

    def __init__(
        self,
        store: JobStore,
        runner: Runner,
        tasks: Mapping[str, Task],
        data_dir: Path | None = None,
        result_alive: Callable[[Any], bool] | None = None,
    ) -> None:
        # whether a finished job's result may answer an identical request: its files may be evicted
        self.result_alive = result_alive or (lambda _result: True)
        self.store = store
        self.runner = runner
        self.tasks = tasks
        self.data_dir = data_dir

    def submit(self, kind: str, params: dict[str, Any], cache_key: str | None = None) -> JobState:
        if kind not in self.tasks:
            raise InvalidInputError(f"unknown task kind '{kind}'")
        if cache_key:
            cached = self.store.find_cached(cache_key)
            if cached is not None and self.result_alive(cached.result):
                return cached  # else a file it links to was evicted: run it again
        if self.data_dir is not None:
            params = {**params, "data_dir": str(self.data_dir)}
        state = JobState(id=uuid.uuid4().hex, kind=kind, params=params, cache_key=cache_key)
        self.store.create(state)
        self.runner.start(self.store, state)
        return self.get(state.id)

    def get(self, job_id: str) -> JobState:
        st = self.store.get(job_id)
        if st is None:
            raise NotFoundError(f"Unknown job '{job_id}'.")
        return st

    def cancel(self, job_id: str) -> JobState:
        st = self.get(job_id)
        if not st.done:
            self.store.request_cancel(job_id)
            if st.status == "queued":
                self.store.update(job_id, status="cancelled", message="cancelled before it started")
        return self.get(job_id)

    def send_control(self, job_id: str, values: dict[str, Any]) -> JobState:
        st = self.get(job_id)
        if st.done:
            raise ConflictError(f"Job '{job_id}' has already {st.status}; start a new one.")
        self.store.set_control(job_id, values)
        return self.get(job_id)

    def wait(self, job_id: str, timeout: float = 60.0, poll: float = 0.05) -> JobState:
        """Block until the job is terminal (for the CLI and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.get(job_id)
            if st.done or time.monotonic() > deadline:
                return st
            time.sleep(poll)

    def interrupt_all(self, reason: str) -> list[JobState]:
        """Mark every queued or running job of this process ``interrupted`` with ``reason`` and stop them
        (their next progress report raises :class:`JobCancelled`); the jobs so marked."""
        marked = []
        for st in self.store.list():
            if not st.done:
                self.store.request_cancel(st.id)
                self.store.update(st.id, status=INTERRUPTED, error=reason, message=reason)
                marked.append(self.get(st.id))
        return marked

    def shutdown(self) -> None:
        self.runner.shutdown()
