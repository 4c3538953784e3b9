"""Dynamic batching: concurrent single-input forwards of the same model and layer run as one batch.

No timed window: a request that finds nothing running for its key runs at once (alone, so an idle
server adds no latency). Requests that arrive while a forward for their key is running queue up, and
the queue runs as one batched forward as soon as the running one ends: under load the batch grows by
itself, up to ``max_batch`` inputs. Each request gets its own row of the output.

How many of the queued inputs one forward takes is the ``take`` policy's: all of them by default. With
compiled inference a batch is padded to its compiled size (1, 2, 4, 8, ...), so a batch of 5 would pay
for 8; ``take=largest_bucket`` (the services' choice when compiling) runs 4 and leaves the fifth at the
head of the queue, where the next arrivals join it.

Thread-based: requests run in the web server's worker threads; the thread that runs a batch's
forward is the request at the head of the queue, one of the batch's own (its hooks are thread-scoped,
see ``server.engine.hooks``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import torch

BatchFn = Callable[[torch.Tensor], torch.Tensor]
TaggedBatchFn = Callable[[torch.Tensor], tuple[torch.Tensor, Any]]  # (output, a tag every row shares)


@dataclass
class _Slot:
    """One request: its input, then its row of the output (or the error) once a forward carried it."""

    x: torch.Tensor
    output: torch.Tensor | None = None
    tag: Any = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Key:
    queue: deque[_Slot] = field(default_factory=deque)
    busy: bool = False


@dataclass
class BatchStats:
    forwards: int = 0  # batched forwards run
    inputs: int = 0  # inputs they carried
    largest: int = 0  # the largest batch


class Batcher:
    """``run(key, x, fn)`` returns ``fn(batch)[i : i + 1]`` for this request's ``x`` (a batch of one).

    Inputs batched together share ``key`` (same model, weights, layer and input shape); ``fn`` must
    treat the rows of its batch independently (eval mode: no batch statistics), as every forward here
    does. ``max_batch <= 1`` turns batching off: each request runs its own forward, concurrently.
    """

    def __init__(self, max_batch: int = 16, take: Callable[[int], int] | None = None) -> None:
        self.max_batch = max_batch
        self.take = take or (lambda n: n)  # how many of n queued inputs (n <= max_batch) one forward runs
        self._cond = threading.Condition()
        self._keys: dict[Hashable, _Key] = {}
        self.stats = BatchStats()

    def run(self, key: Hashable, x: torch.Tensor, fn: BatchFn) -> torch.Tensor:
        return self.run_tagged(key, x, lambda batch: (fn(batch), None))[0]

    def run_tagged(self, key: Hashable, x: torch.Tensor, fn: TaggedBatchFn) -> tuple[torch.Tensor, Any]:
        """As :meth:`run`, for an ``fn`` that also says how its batch ran (``(output, tag)``): the tag of
        the forward that carried this request comes back with its row."""
        if x.shape[0] != 1:
            raise ValueError(f"Batcher.run takes a batch of one input, got {x.shape[0]}.")
        if self.max_batch <= 1:
            return fn(x)
        key = (key, tuple(x.shape), x.dtype, x.device)
        slot = _Slot(x)
        with self._cond:
            state = self._keys.setdefault(key, _Key())
            state.queue.append(slot)
            while not slot.done and (state.busy or state.queue[0] is not slot):
                self._cond.wait()
            if not slot.done:  # this thread runs the forward of the queue's head, itself first
                state.busy = True
                n = min(len(state.queue), self.max_batch)
                n = max(1, min(n, self.take(n)))
                batch = [state.queue.popleft() for _ in range(n)]
        if not slot.done:
            self._lead(key, state, batch, fn)
        if slot.error is not None:
            raise slot.error
        assert slot.output is not None
        return slot.output, slot.tag

    def _lead(self, key: Hashable, state: _Key, batch: list[_Slot], fn: TaggedBatchFn) -> None:
        out: Any = None
        tag: Any = None
        error: BaseException | None = None
        try:
            x = batch[0].x if len(batch) == 1 else torch.cat([s.x for s in batch])
            out, tag = fn(x)
            if not isinstance(out, torch.Tensor) or out.shape[0] != x.shape[0]:
                raise RuntimeError("A batched forward must return one output row per input.")
        except BaseException as exc:  # every request of the batch sees the same error
            error = exc
        finally:
            with self._cond:
                for i, s in enumerate(batch):
                    if error is None:
                        s.output, s.tag = out[i : i + 1], tag
                    s.error = error
                    s.done = True
                self.stats.forwards += 1
                self.stats.inputs += len(batch)
                self.stats.largest = max(self.stats.largest, len(batch))
                state.busy = False
                if not state.queue:
                    self._keys.pop(key, None)
                self._cond.notify_all()
