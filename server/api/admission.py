"""Admission control for the synchronous inference routes (issue 12): a bounded queue per model.

At most ``model_concurrency`` requests of one model run at once (in worker threads); up to ``max_queue``
more wait for them *on the event loop*, holding no thread. Past that a request is refused at once with
503 and ``Retry-After`` instead of waiting without bound, so latency stays bounded under overload and
the thread pool stays free for everything else (``/healthz`` and ``/readyz`` do no model work at all).
Used only from the event loop, so the counters need no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.errors import ServiceBusyError


class Admission:
    def __init__(self, max_queue: int, concurrency: int, retry_after: int = 1) -> None:
        self.max_queue = max_queue
        self.concurrency = concurrency
        self.retry_after = retry_after
        self._admitted: dict[str, int] = {}
        self._running: dict[str, asyncio.Semaphore] = {}
        self.refused = 0

    def admitted(self, model: str) -> int:
        """Requests of ``model`` running or waiting now."""
        return self._admitted.get(model, 0)

    @asynccontextmanager
    async def slot(self, model: str) -> AsyncIterator[None]:
        """Run the body when one of ``model``'s slots is free; 503 at once if its queue is full."""
        n = self._admitted.get(model, 0)
        if n >= self.concurrency + self.max_queue:
            self.refused += 1
            raise ServiceBusyError(
                f"Model '{model}' is busy: {n} requests are running or queued for it "
                f"(CONVLENS_MODEL_CONCURRENCY={self.concurrency}, CONVLENS_MAX_QUEUE={self.max_queue}). "
                f"Retry in {self.retry_after} s.",
                retry_after=self.retry_after,
            )
        self._admitted[model] = n + 1
        try:
            sem = self._running.setdefault(model, asyncio.Semaphore(self.concurrency))
            async with sem:
                yield
        finally:
            self._admitted[model] -= 1
