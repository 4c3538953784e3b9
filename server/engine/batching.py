"""Dynamic batching: concurrent single-input forwards of the same model and layer run as one batch.

No timed window: a request that finds nothing running for its key runs at once (alone, so an idle
server adds no latency). Requests that arrive while a forward for their key is running queue up in
a group, and the group runs as one batched forward as soon as the running one ends: under load the
batch grows by itself, up to ``max_batch`` inputs. Each request gets its own row of the output.

Thread-based: requests run in the web server's worker threads; the thread that runs a group's
forward is one of the group's own requests (its hooks are thread-scoped, see ``server.engine.hooks``).
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
class _Group:
    inputs: list[torch.Tensor] = field(default_factory=list)
    output: torch.Tensor | None = None
    tag: Any = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Key:
    queue: deque[_Group] = field(default_factory=deque)
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

    def __init__(self, max_batch: int = 16) -> None:
        self.max_batch = max_batch
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
        with self._cond:
            state = self._keys.setdefault(key, _Key())
            if not state.queue or len(state.queue[-1].inputs) >= self.max_batch:
                state.queue.append(_Group())
            group = state.queue[-1]
            index = len(group.inputs)
            group.inputs.append(x)
            while not group.done and (state.busy or state.queue[0] is not group):
                self._cond.wait()
            if not group.done:  # this thread runs the group's forward
                state.busy = True
                state.queue.popleft()
        if not group.done:
            self._lead(key, state, group, fn)
        if group.error is not None:
            raise group.error
        assert group.output is not None
        return group.output[index : index + 1], group.tag

    def _lead(self, key: Hashable, state: _Key, group: _Group, fn: TaggedBatchFn) -> None:
        try:
            batch = group.inputs[0] if len(group.inputs) == 1 else torch.cat(group.inputs)
            out, group.tag = fn(batch)
            if not isinstance(out, torch.Tensor) or out.shape[0] != batch.shape[0]:
                raise RuntimeError("A batched forward must return one output row per input.")
            group.output = out
        except BaseException as exc:  # every request of the group sees the same error
            group.error = exc
        finally:
            with self._cond:
                n = len(group.inputs)
                self.stats.forwards += 1
                self.stats.inputs += n
                self.stats.largest = max(self.stats.largest, n)
                group.done = True
                state.busy = False
                if not state.queue:
                    self._keys.pop(key, None)
                self._cond.notify_all()
