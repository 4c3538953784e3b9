"""Graceful shutdown (issue 12): on SIGTERM (or SIGINT) the API stops taking new work, lets running
requests finish, and marks this process's jobs ``interrupted``.

Uvicorn closes the listening socket on the signal and waits up to ``CONVLENS_SHUTDOWN_TIMEOUT_SECONDS``
(``timeout_graceful_shutdown``) for running requests; this module's handler runs first (it chains to
uvicorn's): from then on a request that would start work (any method but GET/HEAD/OPTIONS) gets 503
with ``Retry-After`` and ``Connection: close``, ``/readyz`` answers 503 "shutting down", and every queued
or running in-process job is stopped and marked ``interrupted`` with the reason. Those jobs are written
to ``DATA_DIR/jobs/interrupted.json`` and restored at the next start, so a client polling one after the
restart reads ``interrupted`` instead of a 404.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from server.jobs import JobState
from server.services import Services

log = logging.getLogger(__name__)

REASON = "The server shut down while this job was queued or running; start it again."
KEEP = 200  # interrupted jobs remembered across restarts
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def interrupted_file(data_dir: Path) -> Path:
    return data_dir / "jobs" / "interrupted.json"


class Drain:
    """The shutdown state of one app."""

    def __init__(self, services: Services, retry_after: int) -> None:
        self.services = services
        self.retry_after = retry_after
        self.event = threading.Event()

    @property
    def draining(self) -> bool:
        return self.event.is_set()

    def begin(self) -> None:
        """Stop taking new work and interrupt this process's jobs (once)."""
        if self.event.is_set():
            return
        self.event.set()
        settings = self.services.settings
        if settings.job_backend != "inprocess":  # Celery workers own their jobs
            return
        marked = self.services.jobs.interrupt_all(REASON)
        log.info("shutting down: %d job(s) interrupted: %s", len(marked), ", ".join(s.id for s in marked))
        if marked:
            self._remember(marked)

    def _remember(self, states: list[JobState]) -> None:
        path = interrupted_file(self.services.settings.data_dir)
        try:
            old = json.loads(path.read_text()) if path.is_file() else []
        except (OSError, ValueError):
            old = []
        rows = old + [{**s.to_dict(), "frame": None, "result": None} for s in states]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(rows[-KEEP:]))
            os.replace(tmp, path)  # all or nothing
        except OSError:
            log.exception("could not record the interrupted jobs")

    def restore(self) -> int:
        """Put the jobs interrupted by the last shutdown back in the (in-process) job store."""
        if self.services.settings.job_backend != "inprocess":
            return 0
        path = interrupted_file(self.services.settings.data_dir)
        try:
            rows = json.loads(path.read_text()) if path.is_file() else []
        except (OSError, ValueError):
            return 0
        store = self.services.jobs.store
        for row in rows:
            if store.get(row.get("id", "")) is None:
                store.create(JobState(**row))
        return len(rows)

    def install_signal_handlers(self) -> None:
        """Run :meth:`begin` on SIGTERM/SIGINT before the server's own handler (main thread only: a
        TestClient runs the app in another thread and sends no signals)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)

            def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                self.begin()
                if callable(previous):
                    previous(signum, frame)

            signal.signal(sig, handler)


class DrainMiddleware:
    """Pure ASGI: while draining, a request that would start work gets 503 + Retry-After at once."""

    def __init__(self, app: Any, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.drain.draining or scope["method"] not in _WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "detail": f"The server is shutting down; retry in {self.drain.retry_after} s "
                "(another replica, or this one once restarted, will answer).",
                "error": "ServiceBusyError",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(self.drain.retry_after).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
